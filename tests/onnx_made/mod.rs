//! ONNX models written with the protobuf types, for the refusals of `tests/import.rs` that a
//! Python-made file would need one model each for.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto::{Tensor, Value};
use onnx_protobuf::*;
use protobuf::{EnumOrUnknown, MessageField};

pub fn node(op: &str, name: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![format!("{name}_out")],
        attribute: attrs,
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::INTS),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::INT),
        i: v,
        ..Default::default()
    }
}

pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::FLOAT),
        f: v,
        ..Default::default()
    }
}

pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::STRING),
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A float initialiser of zeros.
pub fn zeros(name: &str, dims: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: vec![0.0; dims.iter().product::<i64>() as usize],
        ..Default::default()
    }
}

/// A float tensor's name and shape.
pub fn info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = (dims.iter())
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        type_: MessageField::some(TypeProto {
            value: Some(Value::TensorType(Tensor {
                elem_type: 1,
                shape: MessageField::some(TensorShapeProto {
                    dim,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A model with input `x` [1, 4, 6, 6], `nodes`, `inits` and the output of the last node.
pub fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, opset: i64) -> Vec<u8> {
    let y = ValueInfoProto {
        name: nodes.last().unwrap().output[0].clone(),
        ..Default::default()
    };
    model_with(nodes, inits, opset, y)
}

/// [`model`] with output `y`.
pub fn model_with(
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    opset: i64,
    y: ValueInfoProto,
) -> Vec<u8> {
    let x = info("x", &[1, 4, 6, 6]);
    let graph = GraphProto {
        node: nodes,
        input: vec![x],
        output: vec![y],
        initializer: inits,
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            version: opset,
            ..Default::default()
        }],
        graph: MessageField::some(graph),
        ..Default::default()
    };
    model.write_to_bytes().unwrap()
}
