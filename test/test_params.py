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
    ("depth_window", 4, "must be odd"),
    ("depth_transport", "zstd", "one of"),
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
    assert key == "/**", "the file must apply under any namespace and node name"
    values = data[key]["ros__parameters"]
    for name, value in values.items():
        assert params.check(name, value) is None, (name, value)
        # ROS refuses an integer for a double parameter: the YAML must write 2.0, not 2.
        assert type(value) is params.SPECS[name].type, (name, value)
    assert values == {p.name: p.default for p in params.PARAMETERS}


def test_generated_files_are_up_to_date():
    """config/lapx.yaml and docs/node.md's table come from the parameter table."""
    fix = "run: python -m lapx_ros.ros.params --write"
    assert (ROOT / "config" / "lapx.yaml").read_text() == params.render_yaml(), fix
    docs = (ROOT / "docs" / "node.md").read_text()
    assert docs == params.docs_with_table(docs), fix
    for spec in params.PARAMETERS:
        assert f"| `{spec.name}` |" in docs


def test_pipeline_settings_come_from_the_parameters():
    cfg = params.NodeConfig().replace(track_max_missed=7, smoothing_beta=0.5, decode="argmax")
    pipeline = params.pipeline_config(cfg)
    assert (pipeline.track_max_missed, pipeline.decode) == (7, "argmax")
    assert pipeline.smoothing_params.beta == 0.5
    assert pipeline.keypoint_threshold == params.SPECS["keypoint_threshold"].default


def test_depth_settings_come_from_the_depth_parameters():
    cfg = params.NodeConfig().replace(depth_window=7, depth_min=0.3, depth_max=6.0, depth_surface_gap=0.05,
                                      depth_min_pixels=9, depth_max_behind=0.4, depth_max_in_front=0.8)
    settings = params.depth_settings(cfg)
    assert (settings.window, settings.min_depth, settings.max_depth, settings.surface_gap,
            settings.min_pixels, settings.max_behind, settings.max_in_front) == (7, 0.3, 6.0, 0.05, 9, 0.4, 0.8)
    assert params.depth_settings(params.NodeConfig()) == type(settings)()  # the same defaults
    with pytest.raises(ValueError, match="depth_min < depth_max"):  # each valid, together not
        params.depth_settings(params.NodeConfig().replace(depth_min=5.0, depth_max=2.0))
    with pytest.raises(ValueError, match="depth_min_pixels must be in"):
        params.depth_settings(params.NodeConfig().replace(depth_window=1, depth_min_pixels=4))


def test_odd_parameters_advertise_a_step_of_two():
    pytest.importorskip("rcl_interfaces")
    (rng,) = params.descriptor(params.SPECS["depth_window"]).integer_range
    assert (rng.from_value, rng.step) == (1, 2)


def _literal_assignment(tree, name):
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return node.value
    raise AssertionError(f"{name} not found")


def test_launch_overrides_are_string_parameters_without_defaults_of_their_own():
    """A launch argument left empty keeps the params file's value, so no default is typed
    twice; the ones it may set are declared string parameters."""
    tree = ast.parse((ROOT / "launch" / "lapx.launch.py").read_text())
    overrides = ast.literal_eval(_literal_assignment(tree, "OVERRIDES"))
    assert overrides
    for name in overrides:
        assert name in params.SPECS and params.SPECS[name].type is str, name
    arguments = _literal_assignment(tree, "ARGUMENTS")
    (spread,) = [v for k, v in zip(arguments.keys, arguments.values) if k is None]
    assert isinstance(spread, ast.DictComp) and "OVERRIDES" in ast.unparse(spread.generators[0].iter)
    assert ast.literal_eval(spread.value.elts[0]) == "", "an override defaults to the file's value"
    named = {ast.literal_eval(k) for k in arguments.keys if k is not None}
    assert not named & set(params.SPECS), "parameters get no launch default here"


def _launch_arguments(path) -> set:
    tree = ast.parse(path.read_text())
    arguments = _literal_assignment(tree, "ARGUMENTS")
    named = {ast.literal_eval(k) for k in arguments.keys if k is not None}
    return named | set(ast.literal_eval(_literal_assignment(tree, "OVERRIDES")))


def test_camera_launch_forwards_only_arguments_the_node_launch_declares():
    declared = _launch_arguments(ROOT / "launch" / "lapx.launch.py")
    tree = ast.parse((ROOT / "launch" / "lapx_camera.launch.py").read_text())
    forwarded = set(ast.literal_eval(_literal_assignment(tree, "FORWARDED")))
    for call in ast.walk(tree):
        if isinstance(call, ast.keyword) and call.arg == "launch_arguments":
            forwarded |= {ast.literal_eval(k) for k in call.value.func.value.keys if k is not None}
    assert forwarded and forwarded <= declared, forwarded - declared
    assert '"pose_node"' not in ast.unparse(tree), "the camera launch starts the node through lapx.launch.py"
