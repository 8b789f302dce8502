"""YAML read safely: `yaml.safe_load` that refuses a key given twice in one mapping and aliases
that expand past MAX_YAML_NODES (`_safe_load`), and the reason of a YAML error on one line."""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_NODES = 100_000  # shipped suites have < 500 nodes; aliases expanding past this are a bomb


class _SuiteLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # `<<: *base` merges are meant to be overridden
            key = self.construct_object(key_node)
            if key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {first[key] + 1})",
                    key_node.start_mark)
            first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _expanded_nodes(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes under `node` with every alias expanded; an alias is its anchor's node object, so
    `sizes` (by id) keeps this linear in the file's size."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise yaml.composer.ComposerError(None, None, "an alias refers to its own anchor "
                                              "(a recursive structure)", node.start_mark)
        return sizes[id(node)]
    sizes[id(node)] = -1  # being counted: meeting it again is a cycle
    children: list[Any] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    sizes[id(node)] = 1 + sum(_expanded_nodes(child, sizes) for child in children)
    return sizes[id(node)]


def _safe_load(text: str) -> Any:
    """yaml.safe_load without duplicate keys or alias bombs ("billion laughs": a few lines of
    aliases of aliases that expand into 10**9 strings once the suite is dumped or used)."""
    loader = _SuiteLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_nodes(node, {}) > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"aliases expand it to more than {MAX_YAML_NODES} values (an alias "
                "bomb?); write the values out")
        return loader.construct_document(node)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}: {reason}" if mark is not None else reason
