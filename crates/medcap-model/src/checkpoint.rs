//! Reading and writing weights in the Hugging Face layout: `model.safetensors`
//! or sharded `model.safetensors.index.json`, keys equal to the variable
//! paths, with the aliases and ties real checkpoints need.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::{Tensor, nn};

use crate::error::ModelError;

/// How file keys relate to variables beyond equal names.
#[derive(Debug, Default, Clone)]
pub struct KeyRules {
    /// `(variable, other file key)`: the variable may be stored under the
    /// other name (e.g. `cls.predictions.decoder.bias` for `cls.predictions.bias`).
    pub aliases: Vec<(String, String)>,
    /// `(variable, source variable)`: when the file lacks the variable, it
    /// is a copy of the source (a tied LM decoder weight, which
    /// transformers 5 does not store).
    pub ties: Vec<(String, String)>,
    /// File keys that no variable reads by design (a tied weight stored anyway).
    pub ignored: Vec<String>,
}

/// What loading found besides the variables it filled.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    /// File keys no variable reads (ignored buffers such as `position_ids` excluded).
    pub unexpected: Vec<String>,
    /// Variables filled from their tie source.
    pub tied: Vec<String>,
}

/// `dir/config.json` parsed as `T`, and its path (for errors about it).
///
/// # Errors
/// [`ModelError::Io`] when it cannot be read, [`ModelError::Config`] when
/// it does not parse as `T`.
pub(crate) fn read_config<T: serde::de::DeserializeOwned>(
    dir: &Path,
) -> Result<(T, PathBuf), ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let config = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok((config, path))
}

/// The keys of a checkpoint directory's weight files that `keep` does not
/// accept: what a model built from part of a checkpoint ignores.
pub(crate) fn keys_outside(
    dir: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ModelError> {
    let mut ignored = Vec::new();
    for file in weight_files(dir)? {
        ignored.extend(stored_keys(&file)?.into_iter().filter(|k| !keep(k)));
    }
    Ok(ignored)
}

/// The weight files of a checkpoint directory.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io {
            path: index.clone(),
            source,
        })?;
        let parsed: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
                path: index.clone(),
                reason: format!("not JSON: {e}"),
            })?;
        let map = parsed
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::Checkpoint {
                path: index.clone(),
                reason: "no `weight_map` object".into(),
            })?;
        let mut files: Vec<PathBuf> = Vec::new();
        for file in map.values() {
            let name = file.as_str().ok_or_else(|| ModelError::Checkpoint {
                path: index.clone(),
                reason: "a `weight_map` value is not a file name".into(),
            })?;
            // Shards must sit beside the index, not anywhere a crafted name points.
            if name.contains('/') || name.contains('\\') || name.starts_with('.') {
                return Err(ModelError::Checkpoint {
                    path: index.clone(),
                    reason: format!("shard name `{name}` is not a plain file name"),
                });
            }
            let path = dir.join(name);
            if !files.contains(&path) {
                files.push(path);
            }
        }
        return Ok(files);
    }
    for pickle in ["pytorch_model.bin", "pytorch_model.bin.index.json"] {
        if dir.join(pickle).is_file() {
            return Err(ModelError::PickleRefused {
                path: dir.join(pickle),
            });
        }
    }
    Err(ModelError::Checkpoint {
        path: dir.to_owned(),
        reason: "no model.safetensors or model.safetensors.index.json".into(),
    })
}

/// Where one tensor lies in a safetensors file.
#[derive(Debug, Clone)]
struct StoredTensor {
    file: PathBuf,
    kind: tch::Kind,
    shape: Vec<i64>,
    /// Byte range in the file (the header's offsets plus the header's length).
    start: u64,
    end: u64,
}

/// A safetensors file's header: each tensor's dtype, shape and bytes.
fn read_header(file: &Path) -> Result<Vec<(String, StoredTensor)>, ModelError> {
    use std::io::Read;
    let bad = |reason: String| ModelError::Checkpoint {
        path: file.to_owned(),
        reason,
    };
    let mut f = std::fs::File::open(file).map_err(|source| ModelError::Io {
        path: file.to_owned(),
        source,
    })?;
    let file_len = f
        .metadata()
        .map_err(|source| ModelError::Io {
            path: file.to_owned(),
            source,
        })?
        .len();
    let mut size = [0u8; 8];
    f.read_exact(&mut size)
        .map_err(|e| bad(format!("no safetensors header: {e}")))?;
    let size = u64::from_le_bytes(size);
    // The format caps headers at 100 MB; anything larger is not safetensors.
    if size > 100_000_000 {
        return Err(bad(format!("header of {size} bytes is not plausible")));
    }
    let mut header = vec![0u8; size as usize];
    f.read_exact(&mut header)
        .map_err(|e| bad(format!("truncated header: {e}")))?;
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    let data_start = 8 + size;
    let mut out = Vec::with_capacity(parsed.len());
    for (key, entry) in parsed {
        if key == "__metadata__" {
            continue;
        }
        let kind = match entry["dtype"].as_str() {
            Some("F32") => tch::Kind::Float,
            Some("F16") => tch::Kind::Half,
            Some("BF16") => tch::Kind::BFloat16,
            Some("F64") => tch::Kind::Double,
            Some("I64") => tch::Kind::Int64,
            Some("I32") => tch::Kind::Int,
            Some("I16") => tch::Kind::Int16,
            Some("I8") => tch::Kind::Int8,
            Some("U8") => tch::Kind::Uint8,
            Some("BOOL") => tch::Kind::Bool,
            other => return Err(bad(format!("{key}: dtype {other:?} is not supported"))),
        };
        let shape: Option<Vec<i64>> = entry["shape"]
            .as_array()
            .and_then(|dims| dims.iter().map(serde_json::Value::as_i64).collect());
        let offsets: Option<Vec<u64>> = entry["data_offsets"]
            .as_array()
            .and_then(|o| o.iter().map(serde_json::Value::as_u64).collect());
        let (Some(shape), Some([begin, end])) = (shape, offsets.as_deref()) else {
            return Err(bad(format!("{key}: no shape or data_offsets")));
        };
        let elements: i64 = shape.iter().product();
        let expected = u64::try_from(elements)
            .ok()
            .and_then(|n| n.checked_mul(kind.elt_size_in_bytes() as u64));
        let (start, end) = (
            data_start.saturating_add(*begin),
            data_start.saturating_add(*end),
        );
        if end < start || Some(end - start) != expected || end > file_len {
            return Err(bad(format!(
                "{key}: its bytes {begin}..{} do not hold a {shape:?} tensor within the file",
                end - data_start
            )));
        }
        out.push((
            key,
            StoredTensor {
                file: file.to_owned(),
                kind,
                shape,
                start,
                end,
            },
        ));
    }
    Ok(out)
}

/// The tensor names a safetensors file holds, read from its header only
/// (the weights themselves are not loaded).
pub fn stored_keys(file: &Path) -> Result<Vec<String>, ModelError> {
    Ok(read_header(file)?.into_iter().map(|(k, _)| k).collect())
}

/// One stored tensor, read from its file.
fn read_tensor(stored: &StoredTensor, buffer: &mut Vec<u8>) -> Result<Tensor, ModelError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| ModelError::Io {
        path: stored.file.clone(),
        source,
    };
    let mut f = std::fs::File::open(&stored.file).map_err(io)?;
    f.seek(SeekFrom::Start(stored.start)).map_err(io)?;
    buffer.resize((stored.end - stored.start) as usize, 0);
    f.read_exact(buffer).map_err(io)?;
    Tensor::f_from_data_size(buffer, &stored.shape, stored.kind).map_err(|source| {
        ModelError::Torch {
            context: format!("reading a tensor of {}", stored.file.display()),
            source,
        }
    })
}

/// Fills every variable of `vars` from the checkpoint in `dir`.
///
/// Fails with every missing and mis-shaped key listed (with the expected
/// shapes); unexpected keys are returned in the report (and logged), and
/// `position_ids` buffers of old checkpoints are ignored.
pub fn load(vars: &nn::VarStore, dir: &Path, rules: &KeyRules) -> Result<LoadReport, ModelError> {
    load_files(vars, &weight_files(dir)?, dir, rules)
}

/// The name and shape of every tensor stored in `files` (headers only).
///
/// # Errors
/// As [`load`] for a file that cannot be read or whose header is invalid.
pub(crate) fn stored_shapes(files: &[PathBuf]) -> Result<HashMap<String, Vec<i64>>, ModelError> {
    let mut shapes = HashMap::new();
    for file in files {
        shapes.extend(
            read_header(file)?
                .into_iter()
                .map(|(key, tensor)| (key, tensor.shape)),
        );
    }
    Ok(shapes)
}

/// [`load`] from the safetensors `files` of a checkpoint in `dir` (named
/// in errors), for layouts whose files have other names than
/// `model.safetensors` (open_clip's `open_clip_model.safetensors`).
pub(crate) fn load_files(
    vars: &nn::VarStore,
    files: &[PathBuf],
    dir: &Path,
    rules: &KeyRules,
) -> Result<LoadReport, ModelError> {
    // Only the headers are read up front; each tensor is read from its
    // file when its variable is filled, so that loading needs the model's
    // memory and one tensor's, not the checkpoint's twice over.
    let mut stored: HashMap<String, StoredTensor> = HashMap::new();
    for file in files {
        stored.extend(read_header(file)?);
    }
    let mut buffer = Vec::new();
    let variables = vars.variables();
    let alias: HashMap<&str, &str> = rules
        .aliases
        .iter()
        .map(|(var, key)| (var.as_str(), key.as_str()))
        .collect();
    let tie: HashMap<&str, &str> = rules
        .ties
        .iter()
        .map(|(var, src)| (var.as_str(), src.as_str()))
        .collect();

    let mut used: Vec<&str> = Vec::new();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    let mut report = LoadReport::default();
    let mut sorted: Vec<(&String, &Tensor)> = variables.iter().collect();
    sorted.sort_by_key(|(name, _)| name.as_str());
    let mut tied_later = Vec::new();
    let mut to_copy = Vec::new();
    let _guard = tch::no_grad_guard();
    for (name, var) in sorted {
        let found = stored.get_key_value(name.as_str()).or_else(|| {
            alias
                .get(name.as_str())
                .and_then(|k| stored.get_key_value(*k))
        });
        match found {
            Some((key, tensor)) => {
                used.push(key.as_str());
                if tensor.shape != var.size() {
                    mismatched.push(format!(
                        "{name}: file {:?}, model {:?}",
                        tensor.shape,
                        var.size()
                    ));
                    continue;
                }
                // Shapes are all checked before any tensor is read.
                to_copy.push((name.clone(), var.shallow_clone(), tensor.clone()));
            }
            None => match tie.get(name.as_str()) {
                Some(source) => tied_later.push((name.clone(), (*source).to_owned())),
                None => missing.push(format!("{name} {:?}", var.size())),
            },
        }
    }
    if !missing.is_empty() || !mismatched.is_empty() {
        let mut reason = String::new();
        if !missing.is_empty() {
            reason += &format!("{} missing keys: {}", missing.len(), missing.join(", "));
        }
        if !mismatched.is_empty() {
            if !reason.is_empty() {
                reason += "; ";
            }
            reason += &format!(
                "{} shape mismatches: {}",
                mismatched.len(),
                mismatched.join(", ")
            );
        }
        let unexpected = unexpected_keys(&stored, &used);
        if !unexpected.is_empty() {
            reason += &format!(
                "; {} unexpected keys (is this the right kind of checkpoint?): {}",
                unexpected.len(),
                preview(&unexpected)
            );
        }
        return Err(ModelError::Checkpoint {
            path: dir.to_owned(),
            reason,
        });
    }
    for (name, mut var, tensor) in to_copy {
        let value = read_tensor(&tensor, &mut buffer)?;
        var.f_copy_(&value).map_err(|source| ModelError::Torch {
            context: format!("copying {name}"),
            source,
        })?;
    }
    for (name, source) in tied_later {
        if let (Some(var), Some(src)) = (variables.get(&name), variables.get(&source)) {
            let mut var = var.shallow_clone();
            var.f_copy_(src).map_err(|source| ModelError::Torch {
                context: format!("tying {name}"),
                source,
            })?;
            report.tied.push(name);
        }
    }
    used.extend(rules.ignored.iter().map(String::as_str));
    report.unexpected = unexpected_keys(&stored, &used);
    if !report.unexpected.is_empty() {
        tracing::warn!(
            dir = %dir.display(),
            "{} checkpoint keys not used: {}",
            report.unexpected.len(),
            preview(&report.unexpected)
        );
    }
    Ok(report)
}

fn unexpected_keys(stored: &HashMap<String, StoredTensor>, used: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = stored
        .keys()
        .filter(|k| !used.contains(&k.as_str()) && !k.ends_with("position_ids"))
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn preview(keys: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text += &format!(", and {} more", keys.len() - SHOWN);
    }
    text
}

/// Writes every variable to `dir/model.safetensors` (fp32 on the CPU, keys
/// sorted), atomically ([`medcap_io::write_atomic_via`]: a temporary file,
/// synced and renamed into place), so a failed write leaves an earlier file
/// intact.
pub fn save(vars: &nn::VarStore, dir: &Path) -> Result<(), ModelError> {
    let variables: BTreeMap<String, Tensor> = vars.variables().into_iter().collect();
    let tensors: Vec<(String, Tensor)> = variables
        .into_iter()
        .map(|(name, t)| (name, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    let target = dir.join("model.safetensors");
    medcap_io::write_atomic_via(&target, |temporary| {
        Tensor::write_safetensors(&tensors, temporary).map_err(|e| ModelError::Checkpoint {
            path: target.clone(),
            reason: format!("cannot write: {e}"),
        })
    })
}
