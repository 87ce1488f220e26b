//! Weights files: a model's parameters and its standardising map in one
//! safetensors file (the layout is documented at [`RunDir`](super::RunDir)).

use super::TrainError;
use crate::backend::NamedTensor;
use crate::data::Standardizer;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;

const STANDARDIZE: [&str; 4] = [
    "standardize.x_shift",
    "standardize.x_scale",
    "standardize.y_shift",
    "standardize.y_scale",
];

fn invalid(message: impl std::fmt::Display) -> TrainError {
    TrainError::Invalid(format!("weights file: {message}"))
}

/// The safetensors bytes of `parameters` and `standardizer`.
pub(crate) fn encode(
    model: &str,
    parameters: &[NamedTensor],
    standardizer: &Standardizer,
) -> Result<Vec<u8>, TrainError> {
    let maps = [
        &standardizer.x_shift,
        &standardizer.x_scale,
        &standardizer.y_shift,
        &standardizer.y_scale,
    ];
    let extra = STANDARDIZE
        .iter()
        .zip(maps)
        .map(|(name, values)| NamedTensor {
            name: name.to_string(),
            shape: vec![values.len()],
            data: values.clone(),
        });
    let tensors: Vec<NamedTensor> = parameters.iter().cloned().chain(extra).collect();
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            Ok((
                t.name.as_str(),
                TensorView::new(Dtype::F32, t.shape.clone(), b).map_err(invalid)?,
            ))
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    // One entry: safetensors writes its metadata map in hash order, and the file
    // must be byte-identical for the same seed.
    let metadata = HashMap::from([("symc.model".to_string(), model.to_string())]);
    safetensors::serialize(views, &Some(metadata)).map_err(invalid)
}

/// Reads back what [`encode`] wrote.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Vec<NamedTensor>, Standardizer), TrainError> {
    let file = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let mut parameters = Vec::new();
    let mut maps: [Option<Vec<f32>>; 4] = Default::default();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(invalid(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        match STANDARDIZE.iter().position(|s| *s == name) {
            Some(i) => maps[i] = Some(data),
            None => parameters.push(NamedTensor {
                name,
                shape: view.shape().to_vec(),
                data,
            }),
        }
    }
    // `tensors()` follows the header's order; sort for a stable result.
    parameters.sort_by(|a, b| a.name.cmp(&b.name));
    let [x_shift, x_scale, y_shift, y_scale] = maps;
    let take = |map: Option<Vec<f32>>, i: usize| {
        map.ok_or_else(|| invalid(format!("missing tensor `{}`", STANDARDIZE[i])))
    };
    let standardizer = Standardizer {
        x_shift: take(x_shift, 0)?,
        x_scale: take(x_scale, 1)?,
        y_shift: take(y_shift, 2)?,
        y_scale: take(y_scale, 3)?,
    };
    Ok((parameters, standardizer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_and_standardizer_round_trip() {
        let parameters = vec![
            NamedTensor {
                name: "n1.bias".into(),
                shape: vec![2],
                data: vec![0.5, -1.25],
            },
            NamedTensor {
                name: "n1.weight".into(),
                shape: vec![2, 3],
                data: vec![1.0, 2.0, 3.0, 4.0, 5.0, f32::MIN_POSITIVE],
            },
        ];
        let standardizer = Standardizer {
            x_shift: vec![0.0, 1.0, 2.0],
            x_scale: vec![3.0, 3.0, 3.0],
            y_shift: vec![-0.5, 0.25],
            y_scale: vec![2.0, 4.0],
        };
        let bytes = encode("tiny", &parameters, &standardizer).unwrap();
        let (read, read_standardizer) = decode(&bytes).unwrap();
        assert_eq!(read, parameters);
        assert_eq!(read_standardizer, standardizer);
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["symc.model"], "tiny");
    }

    #[test]
    fn foreign_files_are_rejected() {
        assert!(decode(b"not a safetensors file").is_err());
        let only_parameters = encode("m", &[], &Standardizer::identity(1, 1)).unwrap();
        let (parameters, _) = decode(&only_parameters).unwrap();
        assert!(parameters.is_empty());
        let f64_data = [0u8; 8];
        let view = TensorView::new(Dtype::F64, vec![1], &f64_data).unwrap();
        let bytes = safetensors::serialize([("w", view)], &None).unwrap();
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("tensor `w` is F64, expected F32"), "{err}");
    }
}
