"""A remote, content-addressed cache of build stages, shared by machines, CI jobs and cluster workers.

Before a stage runs, its key is computed (`keys`): the sha256 of the stage fingerprint and the
content hashes of everything it reads. A hit downloads the stage's outputs and record from the
store (`store`, any fsspec filesystem), checks every byte against its sha256 and puts them in
place as if built (`stage`); a successful build is uploaded. `config` reads the project's
`[tool.modelbuild.cache]`, `commands` implements `modelbuild cache status|push|pull|gc`.

Task creation imports only `stage`, which imports the keys, the configuration and the store when
a stage runs.
"""
