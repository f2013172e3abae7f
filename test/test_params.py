"""Parameter declarations and validation, and a static check that the launch files and
the YAML set only parameters the node declares, with the right types."""
import ast
from pathlib import Path

import pytest
import yaml

from lapx_ros.ros import params

ROOT = Path(__file__).resolve().parents[1]


def test_every_parameter_has_a_description_and_valid_default():
    for spec in params.SPECS.values():
        assert spec.description
        assert spec.check(spec.default) is None, spec.name


@pytest.mark.parametrize("name, value, words", [
    ("threads", 0, ">= 1"),
    ("threads", 2.5, "type int"),
    ("backend", "tensorrt", "one of"),
    ("keypoint_threshold", 1.5, "<= 1"),
    ("keypoint_threshold", float("nan"), "NaN"),
    ("smoothing", "yes", "type bool"),
    ("mode", "everyone", "one of"),
    ("nonsense", 1, "unknown parameter"),
])
def test_bad_values_are_refused_with_a_reason(name, value, words):
    assert words in params.check(name, value)


def test_ints_are_accepted_for_floats():
    assert params.check("marker_depth", 3) is None
    assert params.coerce("marker_depth", 3) == 3.0 and isinstance(params.coerce("marker_depth", 3), float)


def test_runtime_changes_only_for_runtime_parameters():
    assert params.check_runtime("smoothing_beta", 0.1) is None
    assert "read-only" in params.check_runtime("model_path", "x.onnx")
    assert "read-only" in params.check_runtime("input_topic", "/cam")


def test_descriptors_carry_ranges_and_read_only():
    pytest.importorskip("rcl_interfaces")
    desc = params.descriptor(params.SPECS["threads"])
    assert desc.read_only and desc.integer_range[0].from_value == 1
    desc = params.descriptor(params.SPECS["keypoint_threshold"])
    assert not desc.read_only and desc.floating_point_range[0].to_value == 1.0
    assert "auto" in params.descriptor(params.SPECS["backend"]).additional_constraints


def test_yaml_sets_only_declared_parameters_with_valid_values():
    data = yaml.safe_load((ROOT / "config" / "lapx.yaml").read_text())
    (key,) = data
    assert key in ("lapx_pose", "/**")
    values = data[key]["ros__parameters"]
    for name, value in values.items():
        assert params.check(name, value) is None, (name, value)
        # ROS refuses an integer for a double parameter: the YAML must write 2.0, not 2.
        assert type(value) is params.SPECS[name].type, (name, value)
    assert set(values) == set(params.SPECS), "config/lapx.yaml should list every parameter"


def _pose_node_parameters(tree) -> dict:
    """Literal dict entries of parameters=[...] of the Node(executable="pose_node") call."""
    found = {}
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        kws = {kw.arg: kw.value for kw in call.keywords}
        exe = kws.get("executable")
        if not (isinstance(exe, ast.Constant) and exe.value == "pose_node"):
            continue
        for item in kws["parameters"].elts:
            if isinstance(item, ast.Dict):
                found.update({ast.literal_eval(k): v for k, v in zip(item.keys, item.values)})
    return found


def _literal_assignment(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return node.value
    raise AssertionError(f"{name} not found")


def test_launch_file_sets_declared_parameters_with_their_types():
    found = _pose_node_parameters(ast.parse((ROOT / "launch" / "lapx.launch.py").read_text()))
    assert found, "the launch file should pass parameters to the node"
    for name, value in found.items():
        assert name in params.SPECS, name
        if isinstance(value, ast.Constant):
            assert params.check(name, value.value) is None, name
            assert type(value.value) is params.SPECS[name].type, name
            continue
        # A launch argument is a string at launch time; ParameterValue's value_type
        # must convert it to the parameter's declared type.
        value_type = [kw.value for kw in value.keywords if kw.arg == "value_type"]
        expected = params.SPECS[name].type.__name__
        assert value_type and ast.unparse(value_type[0]) == expected, (name, expected)


def test_launch_argument_defaults_are_valid_parameter_values():
    tree = ast.parse((ROOT / "launch" / "lapx.launch.py").read_text())
    arguments = _literal_assignment(tree, "ARGUMENTS")
    for key, value in zip(arguments.keys, arguments.values):
        name = ast.literal_eval(key)
        default = value.elts[0]
        if name in params.SPECS and isinstance(default, ast.Constant):
            assert params.check(name, default.value) is None, name


def test_camera_launch_forwards_only_arguments_the_node_launch_declares():
    declared = {ast.literal_eval(k) for k in _literal_assignment(
        ast.parse((ROOT / "launch" / "lapx.launch.py").read_text()), "ARGUMENTS").keys}
    tree = ast.parse((ROOT / "launch" / "lapx_camera.launch.py").read_text())
    forwarded = set(ast.literal_eval(_literal_assignment(tree, "FORWARDED")))
    for call in ast.walk(tree):
        if isinstance(call, ast.keyword) and call.arg == "launch_arguments":
            forwarded |= {ast.literal_eval(k) for k in call.value.func.value.keys if k is not None}
    assert forwarded and forwarded <= declared, forwarded - declared
    assert not _pose_node_parameters(tree)
