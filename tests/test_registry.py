import pytest

from gan_bench.errors import UnknownNameError, UserInputError
from gan_bench.registry import REGISTRIES, Registry


def test_register_get_and_catalogue():
    reg = Registry("widgets", "widget")

    @reg.register("b_thing", colour="red")
    def b():
        """B does b things.

        More text that is not the summary."""

    reg.register("a_thing", object(), summary="an A")
    assert reg.names() == ["a_thing", "b_thing"]
    assert reg.get("b_thing") is b
    assert "a_thing" in reg and "zzz" not in reg
    assert len(reg) == 2
    assert reg.catalogue() == [  # each entry says where it came from
        {"name": "a_thing", "summary": "an A", "source": "built-in"},
        {"name": "b_thing", "summary": "B does b things.", "colour": "red", "source": "built-in"},
    ]


def test_duplicate_name_rejected():
    reg = Registry("widgets", "widget")
    reg.register("x", 1)
    with pytest.raises(ValueError, match="duplicate widget name 'x'"):
        reg.register("x", 2)
    assert reg.get("x") == 1


def test_unknown_name_lists_known_ones():
    reg = Registry("losses", "loss")
    reg.register("hinge", 1)
    reg.register("wasserstein", 2)
    with pytest.raises(UnknownNameError) as info:
        reg.get("hinje")
    assert str(info.value) == "unknown loss 'hinje' (known: hinge, wasserstein)"
    assert isinstance(info.value, UserInputError) and isinstance(info.value, LookupError)


@pytest.mark.parametrize("bad", ["", "has space", "semi;colon"])
def test_invalid_names_rejected(bad):
    with pytest.raises(ValueError, match="invalid"):
        Registry("widgets").register(bad, 1)


def test_axes_exist(builtins_loaded):
    assert set(REGISTRIES) == {"datasets", "architectures", "losses", "penalties", "presets",
                               "metrics", "feature_extractors"}
    assert {"mnist", "stacked_mnist", "ring8", "grid25", "fashion_mnist", "cifar10"} <= set(
        REGISTRIES["datasets"].names())
