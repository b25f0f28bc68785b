//! A JSON arguments object and typed accessors whose errors name the field and say what is expected.

use crate::error::{Result, ThetaError};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub struct Args {
    map: Map<String, Value>,
}

impl Args {
    /// Parses `args-json`: an object (empty text or `null` mean no arguments).
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_slice(text.as_bytes())
            .map_err(|e| ThetaError::invalid("args", format!("not valid JSON: {e}")))?;
        Self::from_value(value, "args")
    }

    pub fn from_value(value: Value, field: &str) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Self { map }),
            Value::Null => Ok(Self::default()),
            other => Err(ThetaError::invalid(
                field,
                format!("expected a JSON object, got {}", kind(&other)),
            )),
        }
    }

    /// Refuses fields the command does not know (a typo would otherwise be ignored silently).
    pub fn allow_only(&self, allowed: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(unknown) => Err(ThetaError::invalid(
                unknown.as_str(),
                format!("unknown field; expected one of: {}", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Removes a field, returning its value (`null` counts as absent).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    /// The value of a field; `null` counts as absent.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// The first of several spellings that is present, with the spelling used.
    pub fn first<'a>(&'a self, names: &[&'a str]) -> Option<(&'a str, &'a Value)> {
        names.iter().find_map(|n| self.get(n).map(|v| (*n, v)))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        self.get(name).map(|v| as_string(name, v)).transpose()
    }

    pub fn required_string(&self, name: &str) -> Result<String> {
        self.string(name)?
            .ok_or_else(|| ThetaError::invalid(name, "required; expected a string"))
    }

    pub fn u32(&self, name: &str) -> Result<Option<u32>> {
        self.get(name).map(|v| as_u32(name, v)).transpose()
    }

    pub fn f64(&self, name: &str) -> Result<Option<f64>> {
        self.get(name)
            .map(|v| {
                v.as_f64().ok_or_else(|| {
                    ThetaError::invalid(name, format!("expected a number, got {}", kind(v)))
                })
            })
            .transpose()
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        self.get(name)
            .map(|v| {
                v.as_bool().ok_or_else(|| {
                    ThetaError::invalid(name, format!("expected true or false, got {}", kind(v)))
                })
            })
            .transpose()
    }

    pub fn object(&self, name: &str) -> Result<Option<Map<String, Value>>> {
        self.get(name).map(|v| as_object(name, v)).transpose()
    }
}

pub fn as_string(name: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ThetaError::invalid(name, format!("expected a string, got {}", kind(v))))
}

pub fn as_u32(name: &str, v: &Value) -> Result<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            ThetaError::invalid(
                name,
                format!("expected a non-negative integer, got {}", short(v)),
            )
        })
}

pub fn as_object(name: &str, v: &Value) -> Result<Map<String, Value>> {
    v.as_object().cloned().ok_or_else(|| {
        ThetaError::invalid(name, format!("expected a JSON object, got {}", kind(v)))
    })
}

/// "a string", "an array", ... for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    crate::client::truncate(&v.to_string(), 40)
}

/// A service alias, prediction or variant name: it becomes a path segment, so only `[A-Za-z0-9_.-]`.
pub fn check_name(field: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ThetaError::invalid(
            field,
            format!(
                "expected a name of letters, digits, `_`, `.` or `-` (at most 128), got `{}`",
                crate::client::truncate(value, 60)
            ),
        ))
    }
}

/// A range check with a clear message. Numbers are printed through `serde_json` so the component does
/// not carry core's float formatting code.
pub fn check_range<T: PartialOrd + Copy + Into<Value>>(
    field: &str,
    value: Option<T>,
    min: T,
    max: T,
) -> Result<()> {
    match value {
        Some(v) if !(v >= min && v <= max) => {
            let show = |x: T| {
                let v: Value = x.into();
                if v.is_null() {
                    "not a number".to_owned()
                } else {
                    v.to_string()
                }
            };
            Err(ThetaError::invalid(
                field,
                format!("expected {} to {}, got {}", show(min), show(max), show(v)),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(e: ThetaError) -> String {
        match e {
            ThetaError::InvalidArgument { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn parse_errors_name_args() {
        assert_eq!(field_of(Args::parse("{nope").unwrap_err()), "args");
        assert_eq!(field_of(Args::parse("[1]").unwrap_err()), "args");
        assert!(Args::parse("").is_ok() && Args::parse("null").is_ok());
    }

    #[test]
    fn accessors_name_the_field() {
        let a = Args::parse(r#"{"s":1,"n":"x","neg":-1,"b":"yes","o":[],"z":null}"#).unwrap();
        assert_eq!(field_of(a.string("s").unwrap_err()), "s");
        assert_eq!(field_of(a.u32("n").unwrap_err()), "n");
        assert_eq!(field_of(a.u32("neg").unwrap_err()), "neg");
        assert_eq!(field_of(a.bool("b").unwrap_err()), "b");
        assert_eq!(field_of(a.object("o").unwrap_err()), "o");
        assert_eq!(a.string("z").unwrap(), None);
        assert_eq!(
            field_of(a.required_string("missing").unwrap_err()),
            "missing"
        );
        assert_eq!(
            field_of(a.allow_only(&["s", "n", "b", "o", "z"]).unwrap_err()),
            "neg"
        );
    }

    #[test]
    fn names_and_ranges() {
        for ok in ["flux", "qwen3", "image_to_image", "a.b-c", "infr_rqst_1"] {
            assert!(check_name("service", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "../admin", "a/b", "a b", "é", "a?x=1", "a%2F",
        ] {
            assert_eq!(
                field_of(check_name("service", bad).unwrap_err()),
                "service",
                "{bad}"
            );
        }
        assert!(check_range("wait", Some(60), 0, 60).is_ok());
        assert_eq!(
            field_of(check_range("wait", Some(61), 0, 60).unwrap_err()),
            "wait"
        );
        assert_eq!(
            field_of(check_range("t", Some(f64::NAN), 0.0, 2.0).unwrap_err()),
            "t"
        );
    }
}
