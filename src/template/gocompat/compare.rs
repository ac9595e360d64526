//! text/template's comparison functions with Go 1.19's rules (`funcs.go`):
//! `eq` with several operands, `ne`, `lt`, `le`, `gt`, `ge` on the basic
//! kinds, integers of either sign compared by value, and Go's errors for
//! anything else (`incompatible types for comparison`, `invalid type for
//! comparison`, `non-comparable type …`).

use tera::{Error, Kwargs, State, TeraResult, Value};

use super::builtins::{call_error, list, value_arg};
use super::fmt::sprintf;
use super::value::Go;
use crate::template::data::check_limits;

/// text/template's `basicKind`.
#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
    Uint,
}

fn basic_kind(go: &Go) -> Kind {
    match go {
        Go::Bool(_) => Kind::Bool,
        Go::Int(_) => Kind::Int,
        Go::Uint(_) => Kind::Uint,
        Go::Float(_) => Kind::Float,
        Go::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

const BAD_TYPE: &str = "invalid type for comparison";
const INCOMPATIBLE: &str = "incompatible types for comparison";

/// Go's reflect kind names, for the messages about non-basic values.
fn reflect_kind(go: &Go) -> &'static str {
    match go {
        Go::Nil => "invalid",
        Go::Slice(_) | Go::Bytes(_) => "slice",
        Go::Map(_) => "map",
        Go::KvPair(_) | Go::Time(_) => "struct",
        Go::Srv(_) => "ptr",
        _ => "basic",
    }
}

fn comparable(go: &Go) -> bool {
    !matches!(go, Go::Slice(_) | Go::Map(_) | Go::Bytes(_))
}

/// Go 1.19's `eq arg1 arg2…`: true when `arg1` equals any of the others.
fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let g1 = Go::of(a);
    let k1 = basic_kind(&g1);
    for b in others {
        let g2 = Go::of(b);
        let k2 = basic_kind(&g2);
        let truth = if k1 != k2 {
            match (g1, g2) {
                (Go::Int(i), Go::Uint(u)) | (Go::Uint(u), Go::Int(i)) => i >= 0 && i as u64 == u,
                _ => {
                    if !matches!(g1, Go::Nil) && !matches!(g2, Go::Nil) {
                        return Err(INCOMPATIBLE.into());
                    }
                    false
                }
            }
        } else {
            match (g1, g2) {
                (Go::Bool(x), Go::Bool(y)) => x == y,
                (Go::Float(x), Go::Float(y)) => x == y,
                (Go::Int(x), Go::Int(y)) => x == y,
                (Go::Uint(x), Go::Uint(y)) => x == y,
                (Go::Str(x), Go::Str(y)) => x == y,
                _ => {
                    let (r1, r2) = (reflect_kind(&g1), reflect_kind(&g2));
                    if r1 != r2 && r1 != "invalid" && r2 != "invalid" {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            sprintf("%s", std::slice::from_ref(a)),
                            g1.type_name(),
                            g2.type_name(),
                            sprintf("%v", std::slice::from_ref(b))
                        ));
                    }
                    if matches!(g1, Go::Nil) || matches!(g2, Go::Nil) {
                        matches!(g1, Go::Nil) == matches!(g2, Go::Nil)
                    } else {
                        if !comparable(&g2) {
                            return Err(format!(
                                "non-comparable type {}: {}",
                                sprintf("%s", std::slice::from_ref(b)),
                                g2.type_name()
                            ));
                        }
                        a == b
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go 1.19's `lt`.
fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (g1, g2) = (Go::of(a), Go::of(b));
    let (k1, k2) = (basic_kind(&g1), basic_kind(&g2));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err(BAD_TYPE.into());
    }
    if k1 != k2 {
        return match (g1, g2) {
            (Go::Int(i), Go::Uint(u)) => Ok(i < 0 || (i as u64) < u),
            (Go::Uint(u), Go::Int(i)) => Ok(i >= 0 && u < i as u64),
            _ => Err(INCOMPATIBLE.into()),
        };
    }
    match (g1, g2) {
        (Go::Float(x), Go::Float(y)) => Ok(x < y),
        (Go::Int(x), Go::Int(y)) => Ok(x < y),
        (Go::Uint(x), Go::Uint(y)) => Ok(x < y),
        (Go::Str(x), Go::Str(y)) => Ok(x < y),
        _ => Err(BAD_TYPE.into()),
    }
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// `go_eq(args=[a, b, …])`.
pub fn go_eq(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let args = list(&kwargs, "args")?;
    let (first, rest) = args
        .split_first()
        .ok_or_else(|| Error::message("wrong number of args for eq: want at least 1 got 0"))?;
    eq(first, rest).map_err(|e| call_error("eq", e))
}

fn pair(kwargs: &Kwargs) -> TeraResult<(Value, Value)> {
    Ok((value_arg(kwargs, "a")?, value_arg(kwargs, "b")?))
}

/// `go_ne(a=, b=)`.
pub fn go_ne(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let (a, b) = pair(&kwargs)?;
    eq(&a, std::slice::from_ref(&b))
        .map(|e| !e)
        .map_err(|e| call_error("ne", e))
}

/// `go_lt(a=, b=)`.
pub fn go_lt(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let (a, b) = pair(&kwargs)?;
    lt(&a, &b).map_err(|e| call_error("lt", e))
}

/// `go_le(a=, b=)`.
pub fn go_le(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let (a, b) = pair(&kwargs)?;
    le(&a, &b).map_err(|e| call_error("le", e))
}

/// `go_gt(a=, b=)`.
pub fn go_gt(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let (a, b) = pair(&kwargs)?;
    le(&a, &b).map(|r| !r).map_err(|e| call_error("gt", e))
}

/// `go_ge(a=, b=)`.
pub fn go_ge(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    check_limits()?;
    let (a, b) = pair(&kwargs)?;
    lt(&a, &b).map(|r| !r).map_err(|e| call_error("ge", e))
}
