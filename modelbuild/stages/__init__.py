"""The build stages behind the doit tasks: ONNX export, Core ML conversion, validation, agreement.

Each stage is a plain function (recipe in, artifacts out, a manifest entry returned) that imports
its heavy tools inside; `modelbuild.tasks` names each as 'module:function', and
`modelbuild.stage_run.run_stage` runs it, records what it wrote and reports it.
"""
