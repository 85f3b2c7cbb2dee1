"""Make the small ONNX models that tests/import.rs imports with `irdc import`, with the `onnx`
package from PyPI, and the output of the `onnx` reference evaluator on a fixed input.

    python3 -m venv target/onnx-venv && target/onnx-venv/bin/pip install onnx numpy
    target/onnx-venv/bin/python tests/onnx/make_models.py

writes, for each model NAME, tests/onnx/NAME.onnx, NAME.input.safetensors (the input under the
name irdc gives it) and NAME.expected.safetensors (the reference evaluator's output). The files
are committed, so the tests need no Python.
"""

import json
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(20)


def save_safetensors(path, tensors):
    """A safetensors file of F32 tensors, written by hand: numpy alone, no other package."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def init(name, *shape, scale=0.5):
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32), name)


def const(name, value, dtype=np.float32):
    tensor = numpy_helper.from_array(np.array(value, dtype=dtype), name + "_value")
    return helper.make_node("Constant", [], [name], name=name, value=tensor)


def convnet():
    """A conv net as PyTorch exports one: numbered tensor names, conv, depthwise conv, relu, concat, instance
    norm with its affine, max pooling, a transposed conv, and attributes in the opset-13 form."""
    nodes = [
        helper.make_node("Conv", ["input.1", "c1.weight", "c1.bias"], ["t1"], name="/c1/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["t1", "dw.weight", "dw.bias"], ["t1d"], name="/dw/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Relu", ["t1d"], ["t2"], name="/relu/Relu"),
        helper.make_node("Conv", ["input.1", "c2.weight"], ["t3"], name="/c2/Conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("LeakyRelu", ["t3"], ["t4"], name="/act/LeakyRelu", alpha=0.2),
        helper.make_node("Concat", ["t2", "t4"], ["t5"], name="/cat/Concat", axis=1),
        helper.make_node("InstanceNormalization", ["t5", "norm.weight", "norm.bias"], ["t6"],
                         name="/norm/InstanceNormalization", epsilon=1e-5),
        helper.make_node("MaxPool", ["t6"], ["t7"], name="/pool/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("ConvTranspose", ["t7", "up.weight", "up.bias"], ["t8"],
                         name="/up/ConvTranspose", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], output_padding=[1, 1]),
        helper.make_node("Tanh", ["t8"], ["output"], name="/out/Tanh"),
    ]
    inits = [
        init("c1.weight", 4, 3, 3, 3), init("c1.bias", 4, scale=0.1),
        init("dw.weight", 4, 1, 3, 3), init("dw.bias", 4, scale=0.1),
        init("c2.weight", 4, 3, 3, 3),
        init("norm.weight", 8, scale=1.0), init("norm.bias", 8, scale=0.2),
        init("up.weight", 8, 3, 3, 3), init("up.bias", 3, scale=0.1),
    ]
    graph = helper.make_graph(
        nodes, "convnet",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), "input.1"


def elementwise():
    """Reflect padding, the unary and binary ops, Clip with constant bounds, reductions, Gelu,
    constants, Identity, Dropout and BatchNormalization (the reference evaluator runs opsets 9
    to 13 of it in training mode, so here at 20), in the opset-20 form (bounds, pads, axes as inputs); the
    batch is dynamic (`N`), so the import needs its shape."""
    nodes = [
        const("pads", [0, 0, 1, 2, 0, 0, 1, 0], np.int64),
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", mode="reflect"),
        helper.make_node("Sigmoid", ["p"], ["s"], name="sig"),
        helper.make_node("Tanh", ["p"], ["t"], name="tanh"),
        helper.make_node("Mul", ["s", "t"], ["st"], name="mul"),
        helper.make_node("Add", ["st", "shift"], ["a"], name="add_shift"),
        const("two", 2.0),
        helper.make_node("Div", ["a", "two"], ["d"], name="half"),
        const("lo", -0.3),
        helper.make_node("Clip", ["d", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Abs", ["p"], ["ab"], name="abs"),
        helper.make_node("Sqrt", ["ab"], ["sq"], name="sqrt"),
        helper.make_node("Neg", ["sq"], ["ng"], name="neg"),
        helper.make_node("Exp", ["ng"], ["ex"], name="exp"),
        const("one", 1.0),
        helper.make_node("Add", ["ab", "one"], ["ab1"], name="plus1"),
        helper.make_node("Log", ["ab1"], ["lg"], name="log"),
        helper.make_node("Softplus", ["p"], ["sp"], name="softplus"),
        helper.make_node("Erf", ["p"], ["er"], name="erf"),
        helper.make_node("Gelu", ["p"], ["g1"], name="gelu"),
        helper.make_node("Gelu", ["p"], ["g2"], name="gelu_tanh", approximate="tanh"),
        helper.make_node("Max", ["ex", "lg"], ["mx"], name="max"),
        helper.make_node("Min", ["sp", "er"], ["mn"], name="min"),
        helper.make_node("Sub", ["mx", "mn"], ["sb"], name="sub"),
        helper.make_node("Sub", ["g1", "g2"], ["gd"], name="gelu_diff"),
        helper.make_node("Add", ["sb", "gd"], ["sg"], name="sum_g"),
        helper.make_node("Add", ["sg", "c"], ["z"], name="sum_c"),
        const("hw", [2, 3], np.int64),
        helper.make_node("ReduceMean", ["z", "hw"], ["m"], name="mean_hw", keepdims=1),
        helper.make_node("Sub", ["z", "m"], ["centred"], name="centre"),
        const("ch", [1], np.int64),
        helper.make_node("ReduceSum", ["centred", "ch"], ["cs"], name="sum_c_axis"),
        helper.make_node("Identity", ["cs"], ["id"], name="identity"),
        helper.make_node("Dropout", ["id"], ["y"], name="drop"),
        helper.make_node("BatchNormalization", ["z", "bn.weight", "bn.bias", "bn.running_mean",
                                                 "bn.running_var"], ["zn"], name="bn"),
        helper.make_node("LeakyRelu", ["zn"], ["y2"], name="leaky"),
    ]
    graph = helper.make_graph(
        nodes, "elementwise",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 7, 7]),
         helper.make_tensor_value_info("y2", TensorProto.FLOAT, ["N", 2, 7, 7])],
        [init("shift", 2, 1, 1, scale=0.3),
         numpy_helper.from_array(np.array(0.4, dtype=np.float32), "hi"),
         init("bn.weight", 2, scale=1.0), init("bn.bias", 2, scale=0.2),
         init("bn.running_mean", 2, scale=0.3),
         numpy_helper.from_array(RNG.uniform(0.5, 2.0, 2).astype(np.float32), "bn.running_var")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), "x"


def layout():
    """The ops of upsampling, attention and an MLP head, in the opset-18 form: DepthToSpace (CRD)
    and SpaceToDepth of one channel, Resize nearest (as PyTorch exports it, and in ONNX's default
    half-pixel form) and linear (by sizes), AveragePool with and without padding, Reshape with 0 and -1, MatMul of rank-4
    tensors and of a weight matrix, Softmax, and GlobalAveragePool, Flatten and Gemm."""
    nodes = [
        helper.make_node("DepthToSpace", ["x"], ["d2s"], name="shuffle", blocksize=2, mode="CRD"),
        helper.make_node("SpaceToDepth", ["d2s"], ["s2d"], name="unshuffle", blocksize=2),
        const("scales", [1.0, 1.0, 2.0, 2.0]),
        helper.make_node("Resize", ["s2d", "", "scales"], ["near"], name="up_nearest",
                         mode="nearest", coordinate_transformation_mode="asymmetric",
                         nearest_mode="floor"),
        const("sizes", [1, 4, 8, 8], np.int64),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["lin"], name="up_linear",
                         mode="linear", coordinate_transformation_mode="pytorch_half_pixel"),
        helper.make_node("Resize", ["s2d", "", "scales"], ["near2"], name="up_half_pixel"),
        helper.make_node("Add", ["near", "lin"], ["up1"], name="up_sum1"),
        helper.make_node("Add", ["up1", "near2"], ["up"], name="up_sum"),
        helper.make_node("AveragePool", ["up"], ["smooth"], name="smooth", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("AveragePool", ["smooth"], ["down"], name="down", kernel_shape=[2, 2],
                         strides=[2, 2]),
        const("heads", [0, 2, -1, 16], np.int64),
        helper.make_node("Reshape", ["down", "heads"], ["q"], name="split_q"),
        const("heads_t", [1, 2, 16, -1], np.int64),
        helper.make_node("Reshape", ["x", "heads_t"], ["k"], name="split_k"),
        helper.make_node("MatMul", ["q", "k"], ["scores"], name="scores"),
        helper.make_node("Softmax", ["scores"], ["attn"], name="attn", axis=-1),
        helper.make_node("Reshape", ["x", "heads"], ["v"], name="split_v"),
        helper.make_node("MatMul", ["attn", "v"], ["mixed"], name="mix"),
        const("nchw", [1, 4, 4, 4], np.int64),
        helper.make_node("Reshape", ["mixed", "nchw"], ["y"], name="merge"),
        helper.make_node("MatMul", ["y", "proj.weight"], ["proj"], name="proj"),
        helper.make_node("Softmax", ["proj"], ["probs"], name="probs", axis=1),
        helper.make_node("GlobalAveragePool", ["y"], ["pooled"], name="gap"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["head"], name="fc",
                         alpha=0.5, beta=2.0, transB=1),
    ]
    graph = helper.make_graph(
        nodes, "layout",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4, 4, 3]),
         helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, 3])],
        [init("proj.weight", 4, 3), init("fc.weight", 3, 4), init("fc.bias", 3, scale=0.2)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), "x"


def unsupported():
    """Ops irdc lacks (Gather twice, Transpose, a node without a name) and a dilated conv."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="dilated", kernel_shape=[3, 3],
                         pads=[2, 2, 2, 2], dilations=[2, 2]),
        const("idx", [0, 1], np.int64),
        helper.make_node("Gather", ["c", "idx"], ["g"], name="pick", axis=1),
        helper.make_node("Gather", ["g", "idx"], ["g2"], name="pick2", axis=2),
        helper.make_node("Relu", ["g2"], ["r"], name="relu"),
        helper.make_node("Transpose", ["r"], ["y"], perm=[0, 1, 3, 2]),
    ]
    graph = helper.make_graph(
        nodes, "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 2])],
        [init("w", 4, 4, 3, 3)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), None


def write(name, made):
    model, input_name = made
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(HERE, name + ".onnx"))
    if input_name is None:
        return
    shape = [1 if isinstance(d, str) else d for d in input_shape(model)]
    x = RNG.standard_normal(shape).astype(np.float32)
    outputs = ReferenceEvaluator(model).run(None, {input_name: x})
    names = [o.name for o in model.graph.output]
    # irdc names an input as an identifier: `input.1` becomes `input_1`.
    save_safetensors(os.path.join(HERE, name + ".input.safetensors"),
                     {input_name.replace(".", "_"): x})
    save_safetensors(os.path.join(HERE, name + ".expected.safetensors"), dict(zip(names, outputs)))


def input_shape(model):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]


if __name__ == "__main__":
    write("convnet", convnet())
    write("elementwise", elementwise())
    write("unsupported", unsupported())
    write("layout", layout())
