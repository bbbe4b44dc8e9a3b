"""CEL device selectors with the semantics of Kubernetes Dynamic Resource Allocation.

A selector has one variable, ``device``, with three fields:

- ``driver``: the driver name, a string.
- ``attributes``: a map from domain to a map from attribute name to value.
- ``capacity``: a map from domain to a map from capacity name to quantity.

A ResourceSlice names attributes either unqualified (``type``), which puts
them in the driver's domain, or qualified (``resource.kubernetes.io/pciBusID``),
which puts them in the named domain. So attribute ``type`` of driver
``gpu.nvidia.com`` is ``device.attributes["gpu.nvidia.com"].type``. Looking up a
domain the device lacks returns an empty map, as in Kubernetes, so a missing
attribute fails with "no such key" on the attribute name.

Attribute values of kind ``string``, ``int`` and ``bool`` become the CEL values
of those types, ``version`` becomes a semantic version and capacity values
become quantities. Quantities and versions are carried through CEL as maps
tagged with ``TYPE_KEY``, and the functions below (``compareTo``, ``major``,
``asInteger``...) dispatch on that tag. The functions follow the Kubernetes
CEL quantity and semver libraries of k8s.io/apiserver/pkg/cel/library.

Evaluation uses the Rust-backed ``common-expression-language`` package
(import name ``cel``). Each device builds its CEL context once and reuses it
for every selector, because converting the device into CEL values costs more
than evaluating a typical selector.

Cost per evaluation of
``device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("16Gi")) >= 0``
on a gke-h100-8 GPU device with its context already built: about 8 to 13
microseconds, against 0.3 to 0.5 microseconds for ``device.driver == "gpu.nvidia.com"``.
Building a device's context costs 80 to 125 microseconds, once per device.
Nearly all of the selector's cost is the two calls from the evaluator into
Python (``quantity`` and ``compareTo``), because the functions themselves
take under a microsecond. Measured with ``python -m allocator.cel`` (Python 3.11.7,
common-expression-language 0.10.0, 2-core x86-64 virtual machine). The numbers
are estimates that vary with the machine.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from decimal import ROUND_UP, Context, Decimal, DecimalException
from typing import Any, Callable, Iterable, Mapping

import cel
from cel import stdlib as cel_stdlib

TYPE_KEY = "__cel_type__"
QUANTITY = "quantity"
SEMVER = "semver"

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# Kubernetes reports malformed quantities with this pattern.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
_QUANTITY_SUFFIX = re.compile(r"[eEinumkKMGTP]*[-+]?[0-9]*")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
# Kubernetes stores quantities with at most nine fractional digits and rounds
# finer values away from zero.
_NANO = Decimal("1e-9")
# The precision keeps every quantity the API accepts exact. The exponent
# bound stops a hostile "1e999999999" from expanding into a huge number.
_DECIMAL_CONTEXT = Context(prec=80, Emax=10_000, Emin=-10_000)

_SEMVER = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")


class SelectorError(ValueError):
    """A CEL selector that does not compile, fails at run time or does not return a bool."""

    def __init__(self, expression: str, detail: str):
        super().__init__(f"CEL selector {expression!r}: {detail}")
        self.expression = expression
        self.detail = detail


class CelValueError(ValueError):
    """An invalid quantity, semantic version or operand inside a CEL function."""


# Quantities.

@functools.lru_cache(maxsize=4096)
def _parse_quantity_cached(text: str) -> Decimal:
    return _parse_quantity(text)


def parse_quantity(text: str) -> Decimal:
    """Parse a Kubernetes quantity such as ``16Gi``, ``500m``, ``1.5`` or ``1e3``.

    Return its exact value, rounded away from zero to nine fractional digits
    as Kubernetes does. Raise CelValueError for text that is not a quantity.
    """
    if not isinstance(text, str):
        raise CelValueError(f"quantity must be a string, got {_type_name(text)}")
    return _parse_quantity_cached(text)


def _parse_quantity(text: str) -> Decimal:
    if not text:
        raise CelValueError("quantity is empty")
    number = _QUANTITY_NUMBER.match(text)
    assert number is not None  # every group of the pattern is optional
    sign, whole, fraction = number.group(1), number.group(2), number.group(3) or ""
    suffix = text[number.end():]
    if not whole and not fraction or not _QUANTITY_SUFFIX.fullmatch(suffix):
        raise CelValueError(f"invalid quantity {text!r}: quantities must match the regular "
                            f"expression '{QUANTITY_PATTERN}'")
    digits = Decimal(f"{sign}{whole or '0'}.{fraction or '0'}")
    try:
        value = _apply_suffix(digits, suffix, text)
        if value.is_infinite() or value.adjusted() > 4000:
            raise CelValueError(f"quantity {text!r} is too large")
        rounded = value.quantize(_NANO, rounding=ROUND_UP, context=_DECIMAL_CONTEXT)
    except (DecimalException, OverflowError):
        raise CelValueError(f"quantity {text!r} is too large") from None
    return rounded if rounded else Decimal(0)


def _apply_suffix(digits: Decimal, suffix: str, text: str) -> Decimal:
    if suffix in _DECIMAL_SUFFIXES:
        return digits.scaleb(_DECIMAL_SUFFIXES[suffix], context=_DECIMAL_CONTEXT)
    if suffix in _BINARY_SUFFIXES:
        return _DECIMAL_CONTEXT.multiply(digits, Decimal(2 ** _BINARY_SUFFIXES[suffix]))
    if len(suffix) > 1 and suffix[0] in "eE":
        try:
            exponent = int(suffix[1:])
        except ValueError:
            exponent = None
        if exponent is not None and suffix[1:].lstrip("+-").isdigit():
            if abs(exponent) > 4000:
                raise CelValueError(f"quantity {text!r} is too large")
            return digits.scaleb(exponent, context=_DECIMAL_CONTEXT)
    raise CelValueError(f"invalid quantity {text!r}: unknown suffix {suffix!r}; use one of "
                        "Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent such as e3")


def _canonical(value: Decimal) -> str:
    """Write a value so that equal quantities get equal strings (CEL map equality)."""
    if not value:
        return "0"
    return str(value.normalize(context=_DECIMAL_CONTEXT))


def quantity_value(text: str) -> dict[str, Any]:
    """Return the CEL value of a quantity string: a map tagged as a quantity."""
    return _quantity_map(parse_quantity(text))


@functools.lru_cache(maxsize=4096)
def _quantity_value_cached(text: str) -> dict[str, Any]:
    return quantity_value(text)


def _quantity_map(value: Decimal) -> dict[str, Any]:
    return {TYPE_KEY: QUANTITY, "value": _canonical(value)}


def _quantity_of(value: Any, function: str) -> Decimal:
    if not _is_tagged(value, QUANTITY):
        raise CelValueError(f"no such overload: {function} expects a quantity, "
                            f"got {_type_name(value)}")
    return _decimal(value["value"])


@functools.lru_cache(maxsize=4096)
def _decimal(text: str) -> Decimal:
    return Decimal(text)


# Semantic versions.

def parse_semver(text: str, normalize: bool = False) -> tuple[int, int, int, str, str]:
    """Parse a semantic version into (major, minor, patch, prerelease, build).

    Without ``normalize`` the text must be a strict SemVer 2.0.0 version
    (``1.2.3``, ``1.2.3-rc.1+build``). With it, a leading ``v``, missing minor
    or patch numbers and leading zeros are accepted, like ``semver(text, true)``
    in Kubernetes. Raise CelValueError for anything else.
    """
    if not isinstance(text, str):
        raise CelValueError(f"semver must be a string, got {_type_name(text)}")
    candidate = _normalize_semver(text) if normalize else text
    match = _SEMVER.match(candidate)
    if match is None:
        raise CelValueError(f"invalid semantic version {text!r}: expected MAJOR.MINOR.PATCH "
                            "with optional -prerelease and +build parts, such as 1.2.3")
    major, minor, patch = (int(part) for part in match.group(1, 2, 3))
    if max(major, minor, patch) > INT64_MAX:
        raise CelValueError(f"semantic version {text!r} has a number too large for CEL int")
    return major, minor, patch, match.group(4) or "", match.group(5) or ""


def _normalize_semver(text: str) -> str:
    text = text.strip()
    if text.startswith("v"):
        text = text[1:]
    core, separator, rest = _split_core(text)
    parts = core.split(".")
    if 0 < len(parts) < 3 and all(parts):
        parts += ["0"] * (3 - len(parts))
    parts = [part.lstrip("0") or "0" if part.isdigit() else part for part in parts]
    return ".".join(parts) + separator + rest


def _split_core(text: str) -> tuple[str, str, str]:
    for index, char in enumerate(text):
        if char in "-+":
            return text[:index], char, text[index + 1:]
    return text, "", ""


def semver_value(text: str, normalize: bool = False) -> dict[str, Any]:
    """Return the CEL value of a semantic version: a map tagged as a semver.

    The build metadata is dropped because it takes no part in comparisons, so
    ``==`` between two versions agrees with ``compareTo``.
    """
    major, minor, patch, prerelease, _build = parse_semver(text, normalize)
    return {TYPE_KEY: SEMVER, "major": major, "minor": minor, "patch": patch,
            "prerelease": prerelease}


def _semver_of(value: Any, function: str) -> dict[str, Any]:
    if not _is_tagged(value, SEMVER):
        raise CelValueError(f"no such overload: {function} expects a semver, "
                            f"got {_type_name(value)}")
    return value


def _compare_semver(left: Mapping[str, Any], right: Mapping[str, Any]) -> int:
    for field in ("major", "minor", "patch"):
        if left[field] != right[field]:
            return -1 if left[field] < right[field] else 1
    return _compare_prerelease(left["prerelease"], right["prerelease"])


def _compare_prerelease(left: str, right: str) -> int:
    """Order prerelease strings by SemVer 2.0.0 precedence (none ranks above any)."""
    if left == right:
        return 0
    if not left or not right:
        return 1 if not left else -1
    for mine, theirs in zip(left.split("."), right.split(".")):
        if mine == theirs:
            continue
        if mine.isdigit() and theirs.isdigit():
            return -1 if int(mine) < int(theirs) else 1
        if mine.isdigit() != theirs.isdigit():
            return -1 if mine.isdigit() else 1  # numeric identifiers rank lower
        return -1 if mine < theirs else 1
    return -1 if len(left.split(".")) < len(right.split(".")) else 1


# CEL functions. Methods such as x.compareTo(y) reach them as compareTo(x, y).

def _is_tagged(value: Any, kind: str) -> bool:
    # The evaluator passes CEL maps as plain dicts.
    return type(value) is dict and value.get(TYPE_KEY) == kind


def _type_name(value: Any) -> str:
    if isinstance(value, Mapping) and value.get(TYPE_KEY) in (QUANTITY, SEMVER):
        return value[TYPE_KEY]
    names = {bool: "bool", int: "int", float: "double", str: "string", bytes: "bytes",
             list: "list", dict: "map", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _compare(left: Any, right: Any, function: str) -> int:
    if _is_tagged(left, QUANTITY):
        mine, theirs = _quantity_of(left, function), _quantity_of(right, function)
        return (mine > theirs) - (mine < theirs)
    if _is_tagged(left, SEMVER):
        return _compare_semver(left, _semver_of(right, function))
    raise CelValueError(f"no such overload: {function} is defined on quantity and semver, "
                        f"not on {_type_name(left)}")


def _compare_to(left: Any, right: Any) -> int:
    return _compare(left, right, "compareTo")


def _is_greater_than(left: Any, right: Any) -> bool:
    return _compare(left, right, "isGreaterThan") > 0


def _is_less_than(left: Any, right: Any) -> bool:
    return _compare(left, right, "isLessThan") < 0


def _equal(left: Any, right: Any) -> bool:
    return _compare(left, right, "equal") == 0


def _quantity(text: Any) -> dict[str, Any]:
    # The evaluator copies the returned map, so sharing the cached one is safe.
    if type(text) is str:
        return _quantity_value_cached(text)
    return quantity_value(text)


def _is_quantity(text: Any) -> bool:
    try:
        parse_quantity(text)
    except CelValueError:
        return False
    return True


def _semver(text: Any, normalize: bool = False) -> dict[str, Any]:
    return semver_value(text, normalize)


def _is_semver(text: Any, normalize: bool = False) -> bool:
    try:
        parse_semver(text, normalize)
    except CelValueError:
        return False
    return True


def _sign(value: Any) -> int:
    number = _quantity_of(value, "sign")
    return (number > 0) - (number < 0)


def _is_integer(value: Any) -> bool:
    number = _quantity_of(value, "isInteger")
    return number == number.to_integral_value() and INT64_MIN <= number <= INT64_MAX


def _as_integer(value: Any) -> int:
    number = _quantity_of(value, "asInteger")
    if number != number.to_integral_value() or not INT64_MIN <= number <= INT64_MAX:
        raise CelValueError(f"cannot convert quantity {_canonical(number)} to an int64: "
                            "it has a fraction or is out of range")
    return int(number)


def _as_approximate_float(value: Any) -> float:
    return float(_quantity_of(value, "asApproximateFloat"))


def _arithmetic_operand(value: Any, function: str) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return _quantity_of(value, function)


def _add(left: Any, right: Any) -> dict[str, Any]:
    total = _DECIMAL_CONTEXT.add(_quantity_of(left, "add"), _arithmetic_operand(right, "add"))
    return _quantity_map(total)


def _sub(left: Any, right: Any) -> dict[str, Any]:
    difference = _DECIMAL_CONTEXT.subtract(_quantity_of(left, "sub"),
                                           _arithmetic_operand(right, "sub"))
    return _quantity_map(difference)


def _major(value: Any) -> int:
    return _semver_of(value, "major")["major"]


def _minor(value: Any) -> int:
    return _semver_of(value, "minor")["minor"]


def _patch(value: Any) -> int:
    return _semver_of(value, "patch")["patch"]


EXTENSION_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": _quantity, "isQuantity": _is_quantity,
    "semver": _semver, "isSemver": _is_semver,
    "compareTo": _compare_to, "isGreaterThan": _is_greater_than, "isLessThan": _is_less_than,
    "equal": _equal,
    "sign": _sign, "isInteger": _is_integer, "asInteger": _as_integer,
    "asApproximateFloat": _as_approximate_float, "add": _add, "sub": _sub,
    "major": _major, "minor": _minor, "patch": _patch,
}
# Kubernetes selectors also get the cel-go string and set extensions, and the
# cel package ships Python versions of them.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    **cel_stdlib.EXTENSIONS["strings"], **cel_stdlib.EXTENSIONS["sets"], **EXTENSION_FUNCTIONS}

# Functions the Rust evaluator provides itself (CEL's standard definitions).
BUILTIN_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double",
    "string", "bytes", "timestamp", "duration", "type", "dyn",
    "getFullYear", "getMonth", "getDayOfYear", "getDate", "getDayOfMonth", "getDayOfWeek",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds",
})


class _DropOwnFunctionErrors(logging.Filter):
    """Drop the cel package's log line for errors raised by the functions above.

    Those errors become a SelectorError that the caller reports, so the log
    line would only repeat it on stderr.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(f"Python function '{name}' failed")
                       for name in FUNCTIONS)


logging.getLogger("cel").addFilter(_DropOwnFunctionErrors())


# Devices.

def split_qualified_name(name: str, driver: str) -> tuple[str, str]:
    """Split an attribute or capacity name into (domain, name), with the driver as default domain."""
    domain, separator, short = name.partition("/")
    return (domain, short) if separator else (driver, name)


def attribute_value(name: str, attribute: Mapping[str, Any]) -> Any:
    """Convert one DeviceAttribute (``{"string": "x"}``, ``{"version": "1.2.3"}``...) to CEL."""
    if not isinstance(attribute, Mapping):
        raise CelValueError(f"attribute {name}: expected a map with one of int, bool, string "
                            f"or version, got {attribute!r}")
    kinds = [kind for kind in ("int", "bool", "string", "version") if kind in attribute]
    if len(kinds) != 1:
        raise CelValueError(f"attribute {name}: expected exactly one of int, bool, string or "
                            f"version, got {sorted(attribute) or 'none'}")
    kind = kinds[0]
    value = attribute[kind]
    expected = {"int": int, "bool": bool, "string": str, "version": str}[kind]
    if not isinstance(value, expected) or kind == "int" and isinstance(value, bool):
        raise CelValueError(f"attribute {name}: {kind} value {value!r} is a "
                            f"{type(value).__name__}")
    if kind == "version":
        try:
            return semver_value(value)
        except CelValueError as error:
            raise CelValueError(f"attribute {name}: {error}") from None
    return value


def capacity_value(name: str, capacity: Any) -> dict[str, Any]:
    """Convert one DeviceCapacity (``{"value": "16Gi"}``) to a CEL quantity."""
    text = capacity.get("value") if isinstance(capacity, Mapping) else capacity
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    try:
        return quantity_value(text)
    except CelValueError as error:
        raise CelValueError(f"capacity {name}: {error}") from None


class DeviceInput:
    """The CEL view of one device, with its evaluation contexts built on first use."""

    __slots__ = ("driver", "name", "_attributes", "_capacity", "_value", "_contexts")

    def __init__(self, driver: str, attributes: Mapping[str, Any] | None = None,
                 capacity: Mapping[str, Any] | None = None, name: str = ""):
        self.driver = driver
        self.name = name
        self._attributes = attributes or {}
        self._capacity = capacity or {}
        self._value: dict[str, Any] | None = None
        self._contexts: dict[frozenset[str], cel.Context] = {}

    @classmethod
    def from_api(cls, driver: str, device: Mapping[str, Any]) -> DeviceInput:
        """Build the input from a v1 Device, or a v1beta1 one that nests fields under ``basic``."""
        fields = device.get("basic") if isinstance(device.get("basic"), Mapping) else device
        return cls(driver, fields.get("attributes"), fields.get("capacity"),
                   str(device.get("name", "")))

    def value(self) -> dict[str, Any]:
        """Return the ``device`` variable, or raise CelValueError for a malformed attribute."""
        if self._value is None:
            attributes: dict[str, dict[str, Any]] = {}
            for name, attribute in self._attributes.items():
                domain, short = split_qualified_name(name, self.driver)
                attributes.setdefault(domain, {})[short] = attribute_value(name, attribute)
            capacity: dict[str, dict[str, Any]] = {}
            for name, amount in self._capacity.items():
                domain, short = split_qualified_name(name, self.driver)
                capacity.setdefault(domain, {})[short] = capacity_value(name, amount)
            self._value = {"driver": self.driver, "attributes": attributes,
                           "capacity": capacity}
        return self._value

    def missing_domains(self, domains: Iterable[str]) -> frozenset[str]:
        """Return the given domains that the device's attributes or its capacity lack."""
        value = self.value()
        return frozenset(domain for domain in domains
                         if domain not in value["attributes"] or domain not in value["capacity"])

    def context(self, empty_domains: frozenset[str] = frozenset()) -> cel.Context:
        """Return the CEL context, with ``empty_domains`` added as empty maps."""
        context = self._contexts.get(empty_domains)
        if context is None:
            value = self.value()
            if empty_domains:
                value = dict(value)
                value["attributes"] = {**{d: {} for d in empty_domains}, **value["attributes"]}
                value["capacity"] = {**{d: {} for d in empty_domains}, **value["capacity"]}
            context = cel.Context(variables={"device": value}, functions=FUNCTIONS)
            self._contexts[empty_domains] = context
        return context


# Selectors.

_STRING_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'')
_LITERAL_CALL = re.compile(
    r'\b(quantity|semver)\(\s*(?:"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\')\s*\)')
_BOUND_NAME = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter|transformList|transformMap)\s*\(\s*"
    r"([A-Za-z_][A-Za-z0-9_]*)\s*,(?:\s*([A-Za-z_][A-Za-z0-9_]*)\s*,)?")


class Selector:
    """A compiled CEL selector, built by compile_selector()."""

    def __init__(self, expression: str):
        self.expression = expression
        try:
            self._program = cel.compile(expression)
        except ValueError as error:
            raise SelectorError(expression, f"compilation failed: {_first_lines(error)}") from None
        self._check_references()
        self._check_literal_arguments()
        # Domains named as string literals may be looked up on devices that
        # lack them, so matches() then retries with them present as empty maps.
        self._domain_literals = frozenset(
            first or second for first, second in _STRING_LITERAL.findall(expression)
            if (first or second))

    def _check_references(self) -> None:
        references = self._program.references()
        bound = {name for pair in _BOUND_NAME.findall(self.expression) for name in pair if name}
        unknown_variables = set(references["variables"]) - {"device"} - bound
        if "cel" in unknown_variables and "bind" in references["functions"]:
            raise SelectorError(self.expression,
                                "cel.bind is not supported by this evaluator; repeat the "
                                "bound expression instead")
        if unknown_variables:
            raise SelectorError(self.expression, "undeclared reference to "
                                f"{', '.join(repr(n) for n in sorted(unknown_variables))}; "
                                "the only variable is 'device'")
        unknown_functions = [name for name in references["functions"]
                             if name[0].isalpha() and name not in FUNCTIONS
                             and name not in BUILTIN_FUNCTIONS]
        if unknown_functions:
            raise SelectorError(self.expression, "undeclared reference to function "
                                f"{', '.join(repr(n) for n in unknown_functions)}, which this "
                                "evaluator does not provide")

    def _check_literal_arguments(self) -> None:
        for function, first, second in _LITERAL_CALL.findall(self.expression):
            argument = first or second
            try:
                if function == "quantity":
                    parse_quantity(argument)
                else:
                    parse_semver(argument)
            except CelValueError as error:
                raise SelectorError(self.expression, str(error)) from None

    def matches(self, device: DeviceInput | Mapping[str, Any]) -> bool:
        """Evaluate the selector on a device, raising SelectorError unless it returns a bool.

        ``device`` is a DeviceInput, or a mapping with ``driver`` and the
        ``attributes`` and ``capacity`` of an API Device.
        """
        if not isinstance(device, DeviceInput):
            device = DeviceInput.from_api(str(device.get("driver", "")), device)
        try:
            context = device.context()
        except CelValueError as error:
            raise SelectorError(self.expression, f"device {device.name}: {error}") from None
        try:
            result = self._program.execute(context)
        except KeyError as error:
            result = self._retry_with_empty_domains(device, error)
        except (LookupError, ArithmeticError, TypeError, ValueError, RuntimeError) as error:
            raise SelectorError(self.expression, _runtime_error(error)) from None
        if not isinstance(result, bool):
            raise SelectorError(self.expression, f"must evaluate to bool, got "
                                f"{_type_name(result)} {result!r}")
        return result

    def _retry_with_empty_domains(self, device: DeviceInput, error: KeyError) -> Any:
        missing = device.missing_domains(self._domain_literals)
        key = error.args[0] if error.args else ""
        if key not in missing:
            raise SelectorError(self.expression, _runtime_error(error)) from None
        try:
            return self._program.execute(device.context(missing))
        except (LookupError, ArithmeticError, TypeError, ValueError, RuntimeError) as retry:
            raise SelectorError(self.expression, _runtime_error(retry)) from None


def _first_lines(error: Exception, count: int = 3) -> str:
    return "\n".join(str(error).strip().splitlines()[:count])


def _runtime_error(error: Exception) -> str:
    """Word an evaluation error the way Kubernetes reports it."""
    if isinstance(error, KeyError):
        return f"runtime error: no such key: {error.args[0] if error.args else ''}"
    message = str(error)
    marker = "Python function call failed: "
    if marker in message:
        message = message.split(marker, 1)[1]
        message = message.split(": ", 1)[1] if ": " in message else message
        message = message.removesuffix(". Check function arguments and their types.")
    elif message.startswith("No such overload"):
        message = "no such overload: " + message.split(": ", 1)[1].split(". ", 1)[0]
    return f"runtime error: {message}"


_SELECTORS: dict[str, Selector | SelectorError] = {}
_MAX_CACHED_SELECTORS = 4096


def compile_selector(expression: str) -> Selector:
    """Compile a selector once per expression string, raising SelectorError if it is invalid."""
    cached = _SELECTORS.get(expression)
    if cached is None:
        if not isinstance(expression, str) or not expression.strip():
            raise SelectorError(str(expression), "expression is empty")
        try:
            cached = Selector(expression)
        except SelectorError as error:
            cached = error
        if len(_SELECTORS) >= _MAX_CACHED_SELECTORS:
            _SELECTORS.clear()
        _SELECTORS[expression] = cached
    if isinstance(cached, SelectorError):
        raise cached
    return cached


def measure_cost(expression: str, device: DeviceInput, repeat: int = 20000) -> float:
    """Return the mean cost of one evaluation in microseconds, context already built."""
    selector = compile_selector(expression)
    selector.matches(device)
    start = time.perf_counter()
    for _ in range(repeat):
        selector.matches(device)
    return (time.perf_counter() - start) / repeat * 1e6


def _report_costs() -> None:
    from fake_devices.profiles import GPU_DRIVER, get_profile

    raw = get_profile("gke-h100-8").devices("node-a")[0]
    for expression in ('device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("16Gi")) >= 0',
                       'device.driver == "gpu.nvidia.com"'):
        cost = measure_cost(expression, DeviceInput.from_api(GPU_DRIVER, raw))
        print(f"{cost:6.2f} us  {expression}")
    start = time.perf_counter()
    for _ in range(2000):
        DeviceInput.from_api(GPU_DRIVER, raw).context()
    print(f"{(time.perf_counter() - start) / 2000 * 1e6:6.2f} us  building one device's context")


if __name__ == "__main__":
    _report_costs()
