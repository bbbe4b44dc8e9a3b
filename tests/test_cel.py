"""Unit tests of allocator/cel.py: quantities, semantic versions and device selectors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from allocator.cel import (CelValueError, DeviceInput, SelectorError, compile_selector,
                           parse_quantity, parse_semver)
from fake_devices.profiles import GPU_DRIVER, TPU_DRIVER, get_profile

NODE = "node-a"


def gpu_device(profile: str = "gke-t4-1", index: int = 0) -> DeviceInput:
    return DeviceInput.from_api(GPU_DRIVER, get_profile(profile).devices(NODE)[index])


def tpu_device(index: int = 0) -> DeviceInput:
    return DeviceInput.from_api(TPU_DRIVER, get_profile("gke-tpu-v6e-8").devices(NODE)[index])


def evaluate(expression: str, device: DeviceInput | None = None) -> bool:
    return compile_selector(expression).matches(device or gpu_device())


# Quantities.

@pytest.mark.parametrize("text, value", [
    ("16Gi", 16 * 2**30),
    ("1Ki", 1024),
    ("1Mi", 2**20),
    ("1Ti", 2**40),
    ("1Pi", 2**50),
    ("1Ei", 2**60),
    ("1.5Gi", 3 * 2**29),
    ("1k", 1000),
    ("1M", 10**6),
    ("2G", 2 * 10**9),
    ("1T", 10**12),
    ("1P", 10**15),
    ("1E", 10**18),
    ("500m", Decimal("0.5")),
    ("1n", Decimal("1e-9")),
    ("1u", Decimal("1e-6")),
    ("42", 42),
    ("0", 0),
    ("+7", 7),
    ("-3", -3),
    ("-1Gi", -(2**30)),
    ("1.5", Decimal("1.5")),
    (".5", Decimal("0.5")),
    ("1.", 1),
    ("1e3", 1000),
    ("1E3", 1000),
    ("1e+3", 1000),
    ("1e-3", Decimal("0.001")),
    ("2.5e2", 250),
    ("0.0000000001", Decimal("1e-9")),
    ("-0.0000000001", Decimal("-1e-9")),
])
def test_quantity_parses(text: str, value: int | Decimal):
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("abc", "regular expression"),
    ("Gi", "regular expression"),
    (".", "regular expression"),
    ("1 Gi", "regular expression"),
    (" 1", "regular expression"),
    ("--1", "regular expression"),
    ("1.2.3", "regular expression"),
    ("1GiB", "regular expression"),
    ("1K", "unknown suffix"),
    ("1ki", "unknown suffix"),
    ("1e", "unknown suffix"),
    ("1Gi3", "unknown suffix"),
    ("1e99999", "too large"),
])
def test_quantity_rejects(text: str, message: str):
    with pytest.raises(CelValueError, match=message):
        parse_quantity(text)


def test_quantity_rejects_non_string():
    with pytest.raises(CelValueError, match="must be a string"):
        parse_quantity(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("expression", [
    'quantity("16Gi").compareTo(quantity("16384Mi")) == 0',
    'quantity("16Gi").compareTo(quantity("16G")) == 1',
    'quantity("1k").compareTo(quantity("1Ki")) == -1',
    'quantity("1Gi").isGreaterThan(quantity("1G"))',
    '!quantity("1G").isGreaterThan(quantity("1Gi"))',
    'quantity("500m").isLessThan(quantity("1"))',
    'quantity("1k") == quantity("1000")',
    'quantity("1k") != quantity("1001")',
    'quantity("1k").equal(quantity("1e3"))',
    'quantity("2Ki").asInteger() == 2048',
    'quantity("1500m").isInteger() == false',
    'quantity("3000m").isInteger()',
    'quantity("1.5").asApproximateFloat() == 1.5',
    'quantity("-2").sign() == -1 && quantity("0").sign() == 0 && quantity("3m").sign() == 1',
    'quantity("1Gi").add(quantity("1Gi")) == quantity("2Gi")',
    'quantity("1Gi").add(1) == quantity("1073741825")',
    'quantity("1").sub(quantity("500m")) == quantity("0.5")',
    'quantity("10").sub(3).asInteger() == 7',
    'isQuantity("16Gi") && !isQuantity("16GB")',
])
def test_quantity_functions(expression: str):
    assert evaluate(expression) is True


@pytest.mark.parametrize("expression, message", [
    ('quantity("1.5").asInteger() == 1', "cannot convert"),
    ('quantity("10Ei").asInteger() > 0', "cannot convert"),
    ('quantity("1").compareTo(semver("1.0.0")) == 0', "expects a quantity, got semver"),
    ('quantity("1").add("x") == quantity("1")', "expects a quantity, got string"),
    ('"16Gi".compareTo("1Gi") > 0', "compareTo is defined on quantity and semver"),
    ('quantity("1") < quantity("2")', "no such overload"),
])
def test_quantity_misuse_fails(expression: str, message: str):
    with pytest.raises(SelectorError, match=message):
        evaluate(expression)


def test_quantity_literal_checked_at_compile():
    with pytest.raises(SelectorError, match="invalid quantity '16GB'"):
        compile_selector('device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("16GB")) > 0')


def test_capacity_compares_to_quantity():
    expression = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("16Gi")) >= 0'

    assert evaluate(expression, gpu_device("gke-t4-1")) is True
    assert evaluate(expression.replace("16Gi", "20Gi"), gpu_device("gke-t4-1")) is False
    assert evaluate(expression.replace("16Gi", "20Gi"), gpu_device("gke-l4-8")) is True


# Semantic versions.

@pytest.mark.parametrize("text, parsed", [
    ("1.2.3", (1, 2, 3, "", "")),
    ("0.0.0", (0, 0, 0, "", "")),
    ("570.133.20", (570, 133, 20, "", "")),
    ("1.0.0-rc.1", (1, 0, 0, "rc.1", "")),
    ("1.0.0-alpha-beta+build.5", (1, 0, 0, "alpha-beta", "build.5")),
])
def test_semver_parses(text: str, parsed: tuple[int, int, int, str, str]):
    assert parse_semver(text) == parsed


@pytest.mark.parametrize("text", ["1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.x", "",
                                  "1.2.3+", "1..3"])
def test_semver_rejects(text: str):
    with pytest.raises(CelValueError, match="invalid semantic version"):
        parse_semver(text)


@pytest.mark.parametrize("text, parsed", [
    ("v1.2.3", (1, 2, 3, "", "")),
    ("1.2", (1, 2, 0, "", "")),
    ("v2", (2, 0, 0, "", "")),
    ("01.02.03", (1, 2, 3, "", "")),
])
def test_semver_normalizes(text: str, parsed: tuple[int, int, int, str, str]):
    assert parse_semver(text, normalize=True) == parsed


# Precedence order from the SemVer 2.0.0 specification, lowest first.
ORDERED_VERSIONS = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                    "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0",
                    "2.0.0"]


@pytest.mark.parametrize("lower, higher", list(zip(ORDERED_VERSIONS, ORDERED_VERSIONS[1:])))
def test_semver_precedence(lower: str, higher: str):
    assert evaluate(f'semver("{lower}").compareTo(semver("{higher}")) == -1')
    assert evaluate(f'semver("{higher}").compareTo(semver("{lower}")) == 1')
    assert evaluate(f'semver("{lower}").isLessThan(semver("{higher}"))')
    assert evaluate(f'semver("{higher}").isGreaterThan(semver("{lower}"))')


@pytest.mark.parametrize("expression", [
    'semver("1.2.3").compareTo(semver("1.2.3")) == 0',
    'semver("1.2.3+build.1") == semver("1.2.3+build.2")',
    'semver("1.2.3").major() == 1 && semver("1.2.3").minor() == 2 && semver("1.2.3").patch() == 3',
    'semver("v1.2", true) == semver("1.2.0")',
    'isSemver("1.2.3") && !isSemver("1.2") && isSemver("1.2", true)',
    'device.attributes["gpu.nvidia.com"].driverVersion.major() == 570',
    'device.attributes["gpu.nvidia.com"].cudaComputeCapability.isGreaterThan(semver("7.0.0"))',
    'device.attributes["gpu.nvidia.com"].cudaComputeCapability == semver("7.5.0")',
])
def test_semver_functions(expression: str):
    assert evaluate(expression) is True


def test_semver_literal_checked_at_compile():
    with pytest.raises(SelectorError, match="invalid semantic version '1.2'"):
        compile_selector('semver("1.2").major() == 1')


# Device attributes and capacity.

def test_unqualified_attribute_in_driver_domain():
    assert evaluate('device.attributes["gpu.nvidia.com"].type == "gpu"') is True
    assert evaluate('device.attributes["gpu.nvidia.com"].productName == "Tesla T4"') is True


def test_qualified_attribute_in_own_domain():
    expression = 'device.attributes["resource.kubernetes.io"].pciBusID == "0000:05:00.0"'

    assert evaluate(expression, gpu_device("gke-l4-8", 1)) is True
    assert evaluate(expression, gpu_device("gke-l4-8", 0)) is False


def test_qualified_attribute_not_in_driver_domain():
    with pytest.raises(SelectorError, match="no such key: pciBusID"):
        evaluate('device.attributes["gpu.nvidia.com"].pciBusID == "0000:04:00.0"')


def test_driver_and_int_attribute():
    device = tpu_device(3)

    assert evaluate('device.driver == "tpu.google.com"', device) is True
    assert evaluate('device.attributes["tpu.google.com"].index == 3', device) is True
    assert evaluate('device.attributes["tpu.google.com"].index > 3', device) is False


def test_bool_attribute():
    device = DeviceInput("example.com", {"healthy": {"bool": True}, "other.io/mig": {"bool": False}})

    assert evaluate('device.attributes["example.com"].healthy', device) is True
    assert evaluate('device.attributes["other.io"].mig', device) is False


def test_v1beta1_basic_layout():
    v1 = get_profile("gke-t4-1").devices(NODE)[0]
    v1beta1 = {"name": v1["name"], "basic": {key: v1[key] for key in ("attributes", "capacity")}}
    device = DeviceInput.from_api(GPU_DRIVER, v1beta1)

    assert evaluate('device.capacity["gpu.nvidia.com"].memory == quantity("16Gi")', device)


def test_mapping_input():
    raw = dict(get_profile("gke-t4-1").devices(NODE)[0], driver=GPU_DRIVER)

    assert compile_selector('device.attributes["gpu.nvidia.com"].type == "gpu"').matches(raw)


def test_missing_domain_reads_as_empty_map():
    device = tpu_device()

    assert evaluate('device.attributes["gpu.nvidia.com"].size() == 0', device) is True
    assert evaluate('has(device.attributes["gpu.nvidia.com"].type)', device) is False
    assert evaluate('device.capacity["gpu.nvidia.com"].size() == 0', device) is True
    assert evaluate('"gpu.nvidia.com" in device.attributes', device) is False


def test_missing_key_error():
    with pytest.raises(SelectorError, match="runtime error: no such key: type") as caught:
        evaluate('device.attributes["gpu.nvidia.com"].type == "gpu"', tpu_device())

    assert caught.value.expression == 'device.attributes["gpu.nvidia.com"].type == "gpu"'


def test_short_circuit_avoids_missing_key():
    expression = 'device.driver == "gpu.nvidia.com" && device.attributes["gpu.nvidia.com"].type == "gpu"'

    assert evaluate(expression, tpu_device()) is False


def test_invalid_version_attribute_fails():
    device = DeviceInput("example.com", {"firmware": {"version": "1.2"}}, name="example/pool/dev")

    with pytest.raises(SelectorError, match="attribute firmware: invalid semantic version"):
        evaluate('device.driver == "example.com"', device)


def test_invalid_capacity_fails():
    device = DeviceInput("example.com", {}, {"memory": {"value": "lots"}})

    with pytest.raises(SelectorError, match="capacity memory: invalid quantity"):
        evaluate('device.driver == "example.com"', device)


# Errors of the selector itself.

@pytest.mark.parametrize("expression, kind", [
    ('device.driver', "string"),
    ('1 + 1', "int"),
    ('device.attributes["gpu.nvidia.com"]', "map"),
    ('device.capacity["gpu.nvidia.com"].memory', "quantity"),
])
def test_non_bool_result_error(expression: str, kind: str):
    with pytest.raises(SelectorError, match=f"must evaluate to bool, got {kind}"):
        evaluate(expression)


@pytest.mark.parametrize("expression, message", [
    ('device.driver ==', "compilation failed"),
    ('device.driver == "a" &&& true', "compilation failed"),
    ('nosuch(device.driver)', "undeclared reference to function 'nosuch'"),
    ('gpu.driver == "x"', "undeclared reference to 'gpu'"),
    ('cel.bind(d, device.driver, d == "x")', "cel.bind is not supported"),
    ('', "expression is empty"),
])
def test_compile_error(expression: str, message: str):
    with pytest.raises(SelectorError, match=message):
        compile_selector(expression)


def test_macros_bind_their_own_names():
    assert evaluate('device.attributes["gpu.nvidia.com"].exists(name, name == "uuid")') is True
    assert evaluate('[1, 2].all(x, x > 0)') is True


def test_string_extension_functions():
    assert evaluate('device.attributes["gpu.nvidia.com"].productName.lowerAscii() == "tesla t4"')


def test_runtime_arithmetic_error():
    with pytest.raises(SelectorError, match="runtime error"):
        evaluate('device.attributes["tpu.google.com"].index / 0 == 1', tpu_device())


def test_compile_cached_per_expression():
    first = compile_selector('device.driver == "cached.example.com"')

    assert compile_selector('device.driver == "cached.example.com"') is first


def test_error_message_names_expression():
    with pytest.raises(SelectorError) as caught:
        evaluate('device.attributes["gpu.nvidia.com"].nope')

    assert str(caught.value).startswith("CEL selector 'device.attributes[\"gpu.nvidia.com\"].nope'")
    assert caught.value.detail == "runtime error: no such key: nope"
