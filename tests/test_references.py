"""'package.module:attr' references: the form the recipe schema accepts, and importing what they name."""
from __future__ import annotations

import pytest

from modelbuild.references import REFERENCE_PATTERN, ModelBuildError, import_factory, import_object
from modelbuild.zoo.ffdnet import FFDNet


def test_the_pattern_takes_dotted_modules_and_attributes():
    assert REFERENCE_PATTERN.match("modelbuild.zoo.ffdnet:FFDNet")
    assert REFERENCE_PATTERN.match("torchvision.models:ResNet50_Weights.DEFAULT")
    assert not REFERENCE_PATTERN.match("modelbuild.zoo.ffdnet.FFDNet")  # no colon
    assert not REFERENCE_PATTERN.match("modelbuild/zoo/ffdnet.py:FFDNet")


def test_import_factory_errors():
    with pytest.raises(ModelBuildError, match="cannot import module 'modelbuild.zoo.nope'"):
        import_factory("modelbuild.zoo.nope:X")
    with pytest.raises(ModelBuildError, match="module 'modelbuild.zoo.ffdnet' has no attribute 'Nope'"):
        import_factory("modelbuild.zoo.ffdnet:Nope")
    with pytest.raises(ModelBuildError, match="model.factory: 'modelbuild.zoo.ffdnet:__doc__' is not a class"):
        import_factory("modelbuild.zoo.ffdnet:__doc__")
    assert import_factory("modelbuild.zoo.ffdnet:FFDNet") is FFDNet


def test_import_object_names_the_field_and_follows_dotted_attributes():
    assert import_object("modelbuild.references:ModelBuildError.__name__") == "ModelBuildError"
    with pytest.raises(ModelBuildError, match="^classifier.labels.python: module 'modelbuild.zoo.ffdnet' has no "
                                              "attribute 'FFDNet.nope'$"):
        import_object("modelbuild.zoo.ffdnet:FFDNet.nope", field="classifier.labels.python")
