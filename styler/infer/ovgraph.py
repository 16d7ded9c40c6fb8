"""Exact rewrites of the exported network that suit CPU convolution kernels (OpenVINO graphs, no torch).

Why: CPU convolution kernels vectorise over channels in blocks of 16. Three layers of the Johnson network have
shapes that waste most of each vector, and profiling OpenVINO on the default half-width model at 1024² (Zen 4,
int8 convolutions) put a quarter of the time in them:

* the last 9×9 convolution, 16 → 3 channels at full resolution (3 of 16 output lanes used): 24 % of the time;
* the first 9×9 convolution, 3 → 16 channels (3 input channels per multiply-accumulate step): 9 %;
* each decoder block, nearest ×2 upsampling, reflection pad, then a 3×3 convolution at the *upsampled* size:
  three full-resolution passes over memory for one convolution.

The rewrites compute the same function with better shapes (weights are only moved or, for the upsampling, summed
in float64, so results agree to float rounding; :func:`optimize_for_cpu` checks it on a random image):

* **space-to-depth** for a thin k×k convolution: ``pad → SpaceToDepth(s) → (K×K conv, K = ⌈(k-1)/s⌉+1) →
  DepthToSpace(s)``: the 9×9 16→3 convolution becomes a 3×3 one, 256 → 48 channels at 1/16 of the pixels.
  More multiply-adds (zeros in the rearranged kernel), far fewer wasted lanes. The int8 graph needs
  :func:`sink_quantizers` for it to run in int8.
* **sub-pixel upsampling**: nearest ×2 then a reflection-padded 3×3 convolution equals, per output phase
  (a, b) ∈ {0,1}², a 2×2-tap convolution of the low-resolution input padded by edge replication. The four phases
  become one 3×3 convolution with 4·C_out channels at low resolution, followed by DepthToSpace(2): the upsampled
  tensor is never built. (Reflection-padding a nearest-upsampled image by one pixel equals upsampling the
  edge-padded image, which is why the edge pad is exact.)

Only convolutions matching these patterns are touched; anything else (other kernels, strides, norms, styles of a
conditional network) stays as exported.

What each is worth (default model, 1024², one thread, CPU time interleaved with the peer network on the loaded
2-core Zen 4; ratio to the peer's time): the last convolution in space-to-depth form (block 4) takes the bf16 graph
from 0.81x to 0.68x and the int8 graph from 0.46x to 0.40x (block 2: 0.68x and 0.43x). The first convolution in
that form (block 2 or 4) gained nothing (0.71x vs 0.68x in bf16), so it is off (:data:`BLOCK_THIN_INPUT` = 0).
The sub-pixel upsampling is neutral in time (±0.02x in every precision) and is kept: the upsampled tensors (the
largest of the decoder) are never built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["optimize_for_cpu", "fold_input", "REWRITE_VERSION"]

#: Bump when a rewrite changes: it is part of the cache keys of every graph derived from it.
REWRITE_VERSION = 1
#: A convolution counts as thin when it has at most this many input or output channels.
THIN_CHANNELS = 4
#: Space-to-depth block for a convolution with few input (the first) or few output channels (the last); 0: not
#: rewritten. 2 and 4 measured against each other and against no rewrite, see the module docstring.
BLOCK_THIN_INPUT, BLOCK_THIN_OUTPUT = 0, 4
#: Whether nearest ×2 upsampling + 3×3 convolution becomes its sub-pixel form.
SUBPIXEL_UPSAMPLING = True
#: Largest difference accepted between the rewritten and the exported graph (outputs in [0, 1]; fp32 gives ~1e-6).
REWRITE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class _Conv:
    """A stride-1, undilated, unpadded Convolution fed by a constant-width reflection Pad."""

    node: Any
    pad: Any
    weights: np.ndarray  # C_out × C_in × k × k
    radius: int  # reflection pad on H and W


def _constant(node: Any) -> np.ndarray | None:
    return node.get_data() if node.get_type_name() == "Constant" else None


def _match_conv(node: Any) -> _Conv | None:
    """``node`` as a :class:`_Conv`, or None when it is any other convolution."""
    attrs = node.get_attributes()
    if (attrs.get("strides") != [1, 1] or attrs.get("dilations") != [1, 1] or any(attrs.get("pads_begin", [1]))
            or any(attrs.get("pads_end", [1]))):
        return None
    weights = _constant(node.input_value(1).get_node())
    pad = node.input_value(0).get_node()
    if weights is None or weights.ndim != 4 or weights.shape[2] != weights.shape[3] or pad.get_type_name() != "Pad":
        return None
    if pad.get_attributes().get("pad_mode") != "reflect":
        return None
    first, last = (_constant(pad.input_value(i).get_node()) for i in (1, 2))
    if first is None or last is None:
        return None
    begin, end = [int(v) for v in first], [int(v) for v in last]
    radius = weights.shape[2] // 2
    if begin != end or begin != [0, 0, radius, radius] or weights.shape[2] != 2 * radius + 1:
        return None
    return _Conv(node, pad, np.asarray(weights, dtype=np.float64), radius)


def _nearest_x2_source(node: Any) -> Any | None:
    """The input of ``node`` when it is a nearest-neighbour ×2 upsampling on H and W (as exported), else None."""
    if node.get_type_name() != "Interpolate":
        return None
    attrs = node.get_attributes()
    if attrs.get("mode") != "nearest" or attrs.get("nearest_mode") != "floor" or any(attrs.get("pads_begin", [1])):
        return None
    if attrs.get("coordinate_transformation_mode") != "asymmetric" or attrs.get("shape_calculation_mode") != "scales":
        return None
    scales = [_constant(node.input_value(i).get_node()) for i in range(1, node.get_input_size())]
    factors = [s for s in scales if s is not None and s.dtype.kind == "f"]
    if not factors or [float(v) for v in factors[0]][-2:] != [2.0, 2.0]:
        return None
    if len(factors[0]) == 4 and [float(v) for v in factors[0]][:2] != [1.0, 1.0]:
        return None
    if len(factors[0]) == 2 and node.get_input_size() > 2:  # scales for explicit axes: must be H and W
        axes = _constant(node.input_value(2).get_node())
        if axes is None or [int(a) for a in axes] != [2, 3]:
            return None
    return node.input_value(0)


def space_to_depth_weights(weights: np.ndarray, block: int) -> np.ndarray:
    """The ``K×K`` kernel on ``SpaceToDepth(block)`` input that equals the ``k×k`` kernel ``weights`` (both
    ``blocks_first``: channel ``(qy·s + qx)·C + c``). Output pixel ``s·i + p`` reads padded pixels
    ``s·i + p + t`` (t < k), i.e. block ``i + (p + t) // s`` at position ``(p + t) % s``."""
    c_out, c_in, k, _ = weights.shape
    taps = (k - 2) // block + 2
    out = np.zeros((block * block * c_out, block * block * c_in, taps, taps), dtype=np.float64)
    for py in range(block):
        for px in range(block):
            rows = slice((py * block + px) * c_out, (py * block + px + 1) * c_out)
            for ty in range(k):
                by, qy = divmod(py + ty, block)
                for tx in range(k):
                    bx, qx = divmod(px + tx, block)
                    cols = slice((qy * block + qx) * c_in, (qy * block + qx + 1) * c_in)
                    out[rows, cols, by, bx] += weights[:, :, ty, tx]
    return out


def subpixel_weights(weights: np.ndarray) -> np.ndarray:
    """The 3×3 low-resolution kernel with 4·C_out channels (``blocks_first`` phases) that equals nearest ×2
    upsampling followed by the reflection-padded 3×3 ``weights``: phase ``a`` reads low-res offset
    ``⌊(a + t - 1) / 2⌋`` for tap ``t``."""
    c_out, c_in = weights.shape[:2]
    out = np.zeros((4 * c_out, c_in, 3, 3), dtype=np.float64)
    for a in range(2):
        for b in range(2):
            rows = slice((a * 2 + b) * c_out, (a * 2 + b + 1) * c_out)
            for ty in range(3):
                for tx in range(3):
                    out[rows, :, (a + ty - 1) // 2 + 1, (b + tx - 1) // 2 + 1] += weights[:, :, ty, tx]
    return out


def _conv(ops: Any, data: Any, weights: np.ndarray, name: str) -> Any:
    return ops.convolution(data, ops.constant(weights.astype(np.float32)), [1, 1], [0, 0], [0, 0], [1, 1],
                           name=name)


def _channel_constant(node: Any, channels: int) -> np.ndarray | None:
    """The constant operand of an elementwise Add/Multiply ``node`` if it is per channel (``1×C×1×1``) or a
    scalar, as a length-``channels`` vector; else None."""
    if node.get_type_name() not in ("Add", "Multiply") or node.get_input_size() != 2:
        return None
    for i in range(2):
        value = _constant(node.input_value(i).get_node())
        if value is not None and value.size in (1, channels) and (value.size == 1 or value.ndim == 4 and
                                                                    value.shape[1] == channels):
            return np.broadcast_to(np.asarray(value, dtype=np.float32).reshape(-1), (channels,)).copy()
    return None


def _replace_with_depth_to_space(ops: Any, conv: Any, inner: Any, block: int) -> None:
    """Make ``DepthToSpace(block)(inner)`` stand in for ``conv``'s output. The per-channel bias Add (and a scalar
    or per-channel Multiply, e.g. the exporter's ÷255) that follow ``conv`` move in front of the DepthToSpace,
    repeated for every phase, so OpenVINO fuses them into the new convolution as it did into the old one."""
    channels = int(conv.get_output_partial_shape(0)[1].get_length())
    tail, out = conv, inner
    while True:
        consumers = list(tail.output(0).get_target_inputs())
        if len(consumers) != 1:
            break
        follower = consumers[0].get_node()
        value = _channel_constant(follower, channels)
        if value is None:
            break
        constant = ops.constant(np.tile(value, block * block).reshape(1, -1, 1, 1))
        out = ops.add(out, constant) if follower.get_type_name() == "Add" else ops.multiply(out, constant)
        tail = follower
    result = ops.depth_to_space(out, "blocks_first", block, name=f"{conv.get_friendly_name()}/d2s")
    tail.output(0).replace(result.output(0))


def _rewrite_thin(ops: Any, conv: _Conv, block: int) -> bool:
    """Space-to-depth form of a thin convolution (see the module docstring); False when the sizes do not fit."""
    k = conv.weights.shape[2]
    taps = (k - 2) // block + 2
    if block * (taps - 1) != 2 * conv.radius:  # the padded size must be whole blocks of the output's
        return False
    name = conv.node.get_friendly_name()
    blocks = ops.space_to_depth(conv.pad.output(0), "blocks_first", block, name=f"{name}/s2d")
    inner = _conv(ops, blocks, space_to_depth_weights(conv.weights, block), f"{name}/s2d_conv")
    _replace_with_depth_to_space(ops, conv.node, inner, block)
    return True


def _rewrite_upsample(ops: Any, conv: _Conv, source: Any) -> None:
    """Sub-pixel form of nearest ×2 → reflection pad 1 → 3×3 convolution (see the module docstring)."""
    name = conv.node.get_friendly_name()
    padded = ops.pad(source, np.array([0, 0, 1, 1], dtype=np.int64), np.array([0, 0, 1, 1], dtype=np.int64),
                     "edge", name=f"{name}/edge_pad")
    inner = _conv(ops, padded, subpixel_weights(conv.weights), f"{name}/subpixel_conv")
    _replace_with_depth_to_space(ops, conv.node, inner, 2)


def _fold_constants(model: Any) -> None:
    """Constant-fold the exporter's pad-size arithmetic so the pads read as constants."""
    from openvino import passes

    manager = passes.Manager()
    manager.register_pass(passes.ConstantFolding())
    manager.run_passes(model)


def fold_input(model: Any, name: str, value: np.ndarray) -> Any:
    """A copy of ``model`` with its input ``name`` replaced by the constant ``value``, constant-folded.

    Why: a multi-style graph computes each norm layer's (γ, β) from its style-mix input on every run; with the mix
    fixed, folding turns that into the constant per-channel affine a single-style graph has, which OpenVINO fuses
    into the neighbouring kernels (a 1024² blend in bf16 on the 2-core EPYC: 0.77× → 0.62× the peer network's time,
    measured in docs/benchmarks.md).
    """
    from openvino import opset13 as ops

    folded = model.clone()
    port = next(p for p in folded.get_parameters() if name in p.get_output_tensor(0).get_names())
    constant = ops.constant(np.ascontiguousarray(value, dtype=np.float32))
    for target in list(port.output(0).get_target_inputs()):
        target.replace_source_output(constant.output(0))
    folded.remove_parameter(port)
    folded.validate_nodes_and_infer_types()
    _fold_constants(folded)
    return folded


def _block(c_in: int, c_out: int) -> int:
    """Space-to-depth block size for a thin convolution (see :data:`BLOCK_THIN_INPUT`)."""
    return (BLOCK_THIN_INPUT if c_in <= THIN_CHANNELS else BLOCK_THIN_OUTPUT) or 10**6  # 0: off


def rewrite(model: Any) -> list[str]:
    """Apply the rewrites to ``model`` (an ``openvino.Model``) in place; returns what was rewritten."""
    from styler.infer.ovcache import import_openvino

    import_openvino()
    import openvino.opset13 as ops

    _fold_constants(model)
    done: list[str] = []
    for node in list(model.get_ordered_ops()):
        if node.get_type_name() != "Convolution":
            continue
        conv = _match_conv(node)
        if conv is None:
            continue
        c_out, c_in, k, _ = conv.weights.shape
        source = _nearest_x2_source(conv.pad.input_value(0).get_node())
        if source is not None and k == 3 and SUBPIXEL_UPSAMPLING:
            _rewrite_upsample(ops, conv, source)
            done.append(f"{node.get_friendly_name()}: sub-pixel upsampling")
        elif k >= 5 and min(c_in, c_out) <= THIN_CHANNELS and _rewrite_thin(ops, conv, _block(c_in, c_out)):
            done.append(f"{node.get_friendly_name()}: space-to-depth {k}×{k} {c_in}→{c_out}")
    if done:
        model.validate_nodes_and_infer_types()
    return done


def _core() -> Any:
    from styler.infer.backends.openvino import _core as shared

    return shared()


def sink_quantizers(model: Any) -> int:
    """Move each activation FakeQuantize that feeds ``Pad → SpaceToDepth`` to just after the SpaceToDepth; returns
    how many moved. Exact: both ops only move values, so quantizing before or after gives the same tensor.

    Why: NNCF places a convolution's input quantizer as early as it can (before the pad), and OpenVINO's
    low-precision pass carries the int8 data through Pad but not through SpaceToDepth, so a space-to-depth
    convolution would silently run in bf16/fp32 (measured: both thin convolutions of the default model did).
    """
    import openvino.opset13 as ops

    moved = 0
    for node in list(model.get_ordered_ops()):
        if node.get_type_name() != "SpaceToDepth":
            continue
        pad = node.input_value(0).get_node()
        if pad.get_type_name() != "Pad":
            continue
        quantizer = pad.input_value(0).get_node()
        if quantizer.get_type_name() != "FakeQuantize":
            continue
        ranges = [quantizer.input_value(i) for i in range(1, 5)]
        copy = ops.fake_quantize(node.output(0), *ranges, quantizer.get_levels(),
                                 name=f"{quantizer.get_friendly_name()}/sunk")
        for target in list(node.output(0).get_target_inputs()):
            if target.get_node() is not copy:
                target.replace_source_output(copy.output(0))
        if len(quantizer.output(0).get_target_inputs()) == 1:  # the pad was its only consumer: drop it there
            pad.input(0).replace_source_output(quantizer.input_value(0))
        moved += 1
    if moved:
        model.validate_nodes_and_infer_types()
    return moved


def probe_inputs(model: Any, size: tuple[int, int] = (68, 92)) -> dict[str, np.ndarray]:
    """Fixed random inputs for every input of a graph: the image, and for a multi-style graph a random convex
    style mix (so the check covers every style's (γ, β), not only the first style's)."""
    from styler.infer.onnx_export import STYLE_NAME

    rng = np.random.default_rng(1)
    feeds = {}
    for port in model.inputs:
        name = port.get_any_name()
        if name == STYLE_NAME:
            mix = rng.random(int(port.get_partial_shape()[0].get_length())).astype(np.float32)
            feeds[name] = mix / mix.sum()
        else:
            feeds[name] = rng.random((1, 3, *size), dtype=np.float32)
    return feeds


def max_difference(original: Any, rewritten: Any, size: tuple[int, int] = (68, 92)) -> float:
    """Max |rewritten − original| on fixed random inputs (:func:`probe_inputs`), both compiled in fp32 on the CPU."""
    core = _core()
    feeds = probe_inputs(original, size)
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    outputs = [core.compile_model(m, "CPU", config)(feeds)[0] for m in (original, rewritten)]
    return float(np.abs(outputs[0] - outputs[1]).max())


def optimize_for_cpu(graph: bytes | str, *, check: bool = True) -> tuple[Any, list[str], list[str]]:
    """The exported network (ONNX bytes or a path) read into OpenVINO and rewritten: ``(model, notes, rewrites)``.

    With ``check``, the rewritten graph is compared against the unchanged one; if they differ by more than
    :data:`REWRITE_TOLERANCE` (a pattern this module misread), the unchanged graph is returned with a note.
    """
    core = _core()
    model = core.read_model(graph)
    done = rewrite(model)
    if not done or not check:
        return model, [], done
    error = max_difference(core.read_model(graph), model)
    if not error <= REWRITE_TOLERANCE:
        return (core.read_model(graph), [f"CPU graph rewrite skipped: it differs by {error:.1e} from the export"],
                [])
    return model, [], done
