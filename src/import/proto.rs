//! Reading the ONNX protobuf: the model, its tensors as numbers, node attributes, input shapes.

use anyhow::{bail, Context, Result};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::{AttributeProto, Message, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use protobuf::Enum;
use std::path::Path;

/// The newest default-domain opset whose ops this importer was written against; a newer one may
/// have changed what an op means, so it is refused rather than guessed at.
pub const NEWEST_OPSET: i64 = 28;
/// Opset 7 is the oldest the `onnx` package still converts from; older ones had other attributes.
pub const OLDEST_OPSET: i64 = 7;

/// Read and decode `path`, refusing what is not an ONNX model this importer understands.
pub fn read_model(path: &Path) -> Result<ModelProto> {
    let name = path.display();
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read `{name}`; give the path of an .onnx file"))?;
    let model = ModelProto::parse_from_bytes(&bytes).map_err(|e| {
        anyhow::anyhow!("{name}: not an ONNX model (the protobuf does not decode: {e})")
    })?;
    if model.graph.is_none() || model.ir_version == 0 {
        bail!("{name}: not an ONNX model (no graph or no IR version); is it an .onnx file?");
    }
    let opset = default_opset(&model).with_context(|| {
        format!("{name}: the model imports no opset of the default ONNX domain")
    })?;
    if !(OLDEST_OPSET..=NEWEST_OPSET).contains(&opset) {
        bail!(
            "{name}: opset {opset} of the default domain; irdc imports opsets {OLDEST_OPSET} to \
             {NEWEST_OPSET}: convert the model with onnx.version_converter"
        );
    }
    Ok(model)
}

/// The version of the default domain (`""` or `ai.onnx`) the model imports.
pub fn default_opset(model: &ModelProto) -> Option<i64> {
    (model.opset_import.iter())
        .find(|o| is_default_domain(&o.domain))
        .map(|o| o.version)
}

pub fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// A tensor's shape and its elements as f64 (exact for every f32, and for the small integers
/// of pads and axes).
pub fn tensor_values(t: &TensorProto) -> Result<(Vec<usize>, Vec<f64>)> {
    let shape = (t.dims.iter())
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<_>>>()
        .with_context(|| format!("tensor `{}` has a negative size in {:?}", t.name, t.dims))?;
    if t.data_location.enum_value() == Ok(DataLocation::EXTERNAL) {
        bail!(
            "tensor `{}` is stored in an external file; save the model with its data inside \
             (onnx.save(model, path, save_as_external_data=False))",
            t.name
        );
    }
    let values = values(t)?;
    let n: usize = shape.iter().product();
    if values.len() != n {
        bail!(
            "tensor `{}` has shape {shape:?} ({n} elements) but holds {}",
            t.name,
            values.len()
        );
    }
    Ok((shape, values))
}

/// The elements, from `raw_data` (little-endian) where it is set, else the typed field.
fn values(t: &TensorProto) -> Result<Vec<f64>> {
    let raw = &t.raw_data;
    let words = |n: usize| raw.chunks_exact(n);
    let ty = DataType::from_i32(t.data_type);
    Ok(match (ty, raw.is_empty()) {
        (Some(DataType::FLOAT), false) => words(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        (Some(DataType::FLOAT), true) => t.float_data.iter().map(|&v| v as f64).collect(),
        (Some(DataType::DOUBLE), false) => words(8)
            .map(|b| f64::from_le_bytes(std::array::from_fn(|i| b[i])))
            .collect(),
        (Some(DataType::DOUBLE), true) => t.double_data.clone(),
        (Some(DataType::FLOAT16), false) => words(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64())
            .collect(),
        (Some(DataType::FLOAT16), true) => (t.int32_data.iter())
            .map(|&v| half::f16::from_bits(v as u16).to_f64())
            .collect(),
        (Some(DataType::INT64), false) => words(8)
            .map(|b| i64::from_le_bytes(std::array::from_fn(|i| b[i])) as f64)
            .collect(),
        (Some(DataType::INT64), true) => t.int64_data.iter().map(|&v| v as f64).collect(),
        (Some(DataType::INT32), false) => words(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect(),
        (Some(DataType::INT32), true) => t.int32_data.iter().map(|&v| v as f64).collect(),
        _ => bail!(
            "tensor `{}` has element type {}; irdc reads float, double, float16, int32 and int64",
            t.name,
            type_name(t.data_type)
        ),
    })
}

fn type_name(data_type: i32) -> String {
    match DataType::from_i32(data_type) {
        Some(t) => format!("{t:?}"),
        None => format!("#{data_type}"),
    }
}

/// The shape of a graph input, each size fixed (`Ok`) or not (`Err` with its name, or `?`).
pub fn input_dims(v: &ValueInfoProto) -> Result<Vec<Result<usize, String>>> {
    use onnx_protobuf::type_proto::Value;
    let Some(Value::TensorType(t)) = &v.type_.value else {
        bail!("input `{}` is not a tensor", v.name);
    };
    if t.elem_type != DataType::FLOAT as i32 {
        bail!(
            "input `{}` has element type {}; irdc computes in float",
            v.name,
            type_name(t.elem_type)
        );
    }
    let Some(shape) = t.shape.as_ref() else {
        return Ok(Vec::new());
    };
    Ok((shape.dim.iter())
        .map(|d| match usize::try_from(d.dim_value()) {
            Ok(n) if n > 0 => Ok(n),
            _ if d.has_dim_param() => Err(d.dim_param().to_string()),
            _ => Err("?".to_string()),
        })
        .collect())
}

/// The shape a graph output is declared with, if it has one whose sizes are all fixed.
pub fn fixed_shape(v: &ValueInfoProto) -> Option<Vec<usize>> {
    let dims = input_dims(v).ok()?;
    let shape = dims.into_iter().collect::<Result<Vec<usize>, _>>().ok()?;
    (!shape.is_empty()).then_some(shape)
}

/// A node's attributes by name, typed as the op expects them.
pub struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    pub fn of(node: &'a NodeProto) -> Self {
        Attrs { node }
    }

    fn get(&self, name: &str, ty: AttributeType) -> Result<Option<&'a AttributeProto>> {
        let Some(a) = self.node.attribute.iter().find(|a| a.name == name) else {
            return Ok(None);
        };
        if a.type_.enum_value() != Ok(ty) {
            bail!(
                "attribute `{name}` is {:?}; expected {ty:?}",
                a.type_.enum_value_or_default()
            );
        }
        Ok(Some(a))
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.get(name, AttributeType::INT)?.map_or(default, |a| a.i))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self
            .get(name, AttributeType::FLOAT)?
            .map_or(default, |a| a.f))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self.get(name, AttributeType::INTS)?.map(|a| a.ints.clone()))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        Ok(match self.get(name, AttributeType::STRING)? {
            Some(a) => String::from_utf8_lossy(&a.s).into_owned(),
            None => default.to_string(),
        })
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        Ok(self
            .get(name, AttributeType::TENSOR)?
            .and_then(|a| a.t.as_ref()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .get(name, AttributeType::FLOATS)?
            .map(|a| a.floats.clone()))
    }

    /// The names of attributes the node has, for refusing those an op does not handle.
    pub fn names(&self) -> impl Iterator<Item = &'a str> {
        self.node.attribute.iter().map(|a| a.name.as_str())
    }
}
