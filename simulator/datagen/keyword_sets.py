"""The JSON Schema keywords data generation sorts by what they constrain (pure data).

A node with an object keyword and no ``type`` is taken for an object, and so on
(:meth:`.plan.SchemaPlan.types`); annotations never constrain, so merging ignores them."""

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "example",
        "examples",
        "default",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$comment",
        "discriminator",
        "xml",
        "externalDocs",
        "contentMediaType",
        "contentEncoding",
        "$schema",
        "$id",
        "$anchor",
        "$dynamicAnchor",
        "$defs",
        "definitions",
    }
)
MIN_KEYS = frozenset(
    {"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains"}
)
MAX_KEYS = frozenset(
    {"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains"}
)
OBJECT_KEYS = frozenset(
    {
        "properties",
        "required",
        "additionalProperties",
        "patternProperties",
        "minProperties",
        "maxProperties",
        "propertyNames",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
    }
)
ARRAY_KEYS = frozenset(
    {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains"}
)
STRING_KEYS = frozenset({"minLength", "maxLength", "pattern"})
NUMBER_KEYS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
NUMBER_FORMATS = {"int32": "integer", "int64": "integer", "float": "number", "double": "number"}
SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean", "null"})
JSON_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
