"""Image definitions: schema, loading, matrix expansion into resolved image specs."""

from archami.config.load import LoadedDefinition, load_definition, parse_definition
from archami.config.matrix import expand, select
from archami.config.schema import Definition
from archami.config.spec import ImageSpec
from archami.config.variant import Variant

__all__ = [
    "Definition", "ImageSpec", "LoadedDefinition", "Variant", "expand", "load_definition", "parse_definition", "select",
]
