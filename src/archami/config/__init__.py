"""Image definitions: schema, loading, matrix expansion."""

from archami.config.load import LoadedDefinition, load_definition, parse_definition
from archami.config.matrix import expand, select
from archami.config.schema import Definition
from archami.config.variant import Variant

__all__ = ["Definition", "LoadedDefinition", "Variant", "expand", "load_definition", "parse_definition", "select"]
