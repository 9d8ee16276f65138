//! Argument parsing from Python objects, and the cache of the Python enum members.
//!
//! Each argument has its own newtype (`OrderId`, `Price`, `SideArg`, ...) so that a bad value is
//! reported with the argument's name whichever function received it, and so that defaults can be
//! written in the PyO3 signatures. Rules: integers must be `int` (or implement `__index__`, like
//! numpy integers), never `bool` or `float` (`TypeError`); values outside the Rust type's range
//! are `ValueError` (a negative id or quantity, anything above 2**64 - 1). Enum arguments take a
//! member of the `tradecore.enums` class or its name as `str`: a member is recognised by identity
//! against the cached members (a pointer compare per candidate), any other `str` (including a
//! member of a reloaded copy of the enums module) by a short compare per candidate name.
//! Integers take a fast path when they are exact `int`s in range, inlined into each argument's
//! parser; everything else (subclasses, `__index__` objects, bools, errors) takes the general
//! path with its messages, out of line and marked cold so that its stack frame and message
//! formatting cost the fast path nothing.
//!
//! The enum cache imports `tradecore.enums` once (if that fails, enum arguments are still parsed
//! by name) and checks that each class lists its members
//! in the order of the Rust discriminants, with the Rust names as values; a mismatch is an
//! `InternalError` on first use rather than silently wrong events.
//!
//! Cost: O(1) per argument on the success path; messages are only formatted on failure.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyInt, PyString};

use tradecore_book::{EventKind, OrderType, Reason, Side, Stp, TimeInForce};

use crate::errors;

/// The Python type name of `obj`, for messages.
pub fn type_name(obj: &Borrowed<'_, '_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

fn shown(obj: &Borrowed<'_, '_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

fn not_an_int(obj: &Borrowed<'_, '_, PyAny>, name: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{name} must be an int, got {} ({})",
        type_name(obj),
        shown(obj)
    ))
}

/// Explain an integer extraction failure: wrong type, negative, or too large.
fn int_failure(obj: &Borrowed<'_, '_, PyAny>, name: &str, err: PyErr, max: &str) -> PyErr {
    let py = obj.py();
    if err.is_instance_of::<PyTypeError>(py) {
        return not_an_int(obj, name);
    }
    let negative = obj.lt(0i32).unwrap_or(false);
    if negative {
        PyValueError::new_err(format!("{name} must not be negative, got {}", shown(obj)))
    } else {
        PyValueError::new_err(format!("{name} must be <= {max}, got {}", shown(obj)))
    }
}

/// An unsigned integer argument in `0 ..= max`.
#[inline(always)]
pub fn extract_u64(
    obj: Borrowed<'_, '_, PyAny>,
    name: &str,
    max: u64,
    max_text: &str,
) -> PyResult<u64> {
    // Fast path: an exact `int` (never a `bool`, which is a subclass) in range. Everything
    // else, messages included, is out of line, so this inlines into each argument's parser
    // without the error paths' stack frame.
    if obj.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<u64>() {
            if v <= max {
                return Ok(v);
            }
        }
    }
    extract_u64_general(obj, name, max, max_text)
}

/// [`extract_u64`] for anything but an exact `int` in range: subclasses, `__index__`
/// objects, and every failure with its message.
#[cold]
#[inline(never)]
fn extract_u64_general(
    obj: Borrowed<'_, '_, PyAny>,
    name: &str,
    max: u64,
    max_text: &str,
) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(not_an_int(&obj, name));
    }
    match obj.extract::<u64>() {
        Ok(v) if v <= max => Ok(v),
        Ok(_) => Err(PyValueError::new_err(format!(
            "{name} must be <= {max_text}, got {}",
            shown(&obj)
        ))),
        Err(e) => Err(int_failure(&obj, name, e, max_text)),
    }
}

/// A signed 64-bit integer argument.
#[inline(always)]
pub fn extract_i64(obj: Borrowed<'_, '_, PyAny>, name: &str) -> PyResult<i64> {
    if obj.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(v);
        }
    }
    extract_i64_general(obj, name)
}

/// [`extract_i64`] for anything but an exact `int` in range.
#[cold]
#[inline(never)]
fn extract_i64_general(obj: Borrowed<'_, '_, PyAny>, name: &str) -> PyResult<i64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(not_an_int(&obj, name));
    }
    match obj.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(e) => {
            if e.is_instance_of::<PyTypeError>(obj.py()) {
                Err(not_an_int(&obj, name))
            } else {
                Err(PyValueError::new_err(format!(
                    "{name} must be within -2**63 ..= 2**63 - 1, got {}",
                    shown(&obj)
                )))
            }
        }
    }
}

const U64_MAX_TEXT: &str = "2**64 - 1";

macro_rules! u64_arg {
    ($(#[$doc:meta])* $ty:ident, $name:literal) => {
        u64_arg!($(#[$doc])* $ty, $name, u64, u64::MAX, U64_MAX_TEXT);
    };
    ($(#[$doc:meta])* $ty:ident, $name:literal, $rust:ty, $max:expr, $max_text:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $ty(pub $rust);

        impl<'a, 'py> FromPyObject<'a, 'py> for $ty {
            type Error = PyErr;

            #[inline]
            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                extract_u64(obj, $name, $max as u64, $max_text).map(|v| $ty(v as $rust))
            }
        }
    };
}

macro_rules! i64_arg {
    ($(#[$doc:meta])* $ty:ident, $name:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $ty(pub i64);

        impl<'a, 'py> FromPyObject<'a, 'py> for $ty {
            type Error = PyErr;

            #[inline]
            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                extract_i64(obj, $name).map($ty)
            }
        }
    };
}

u64_arg!(
    /// `order_id`: u64 (0 is accepted here; the book rejects it with INVALID_ORDER).
    OrderId,
    "order_id"
);
u64_arg!(
    /// `qty`: u64 lots (0 is accepted here; the book rejects it with INVALID_QTY).
    Qty,
    "qty"
);
u64_arg!(
    /// `new_qty` of a modify: u64 lots.
    NewQty,
    "new_qty"
);
u64_arg!(
    /// `timestamp`: u64 nanoseconds, carried and never read by matching.
    Timestamp,
    "timestamp"
);
u64_arg!(
    /// `other_id` of an event.
    OtherId,
    "other_id"
);
u64_arg!(
    /// `leaves` of an event.
    Leaves,
    "leaves"
);
u64_arg!(
    /// `other_leaves` of an event.
    OtherLeaves,
    "other_leaves"
);
u64_arg!(
    /// `account`: u32.
    Account,
    "account",
    u32,
    u32::MAX,
    "4294967295"
);
u64_arg!(
    /// `n`, the number of depth levels.
    DepthN,
    "n",
    usize,
    usize::MAX,
    "the largest usize"
);
i64_arg!(
    /// `price`: i64 ticks.
    Price,
    "price"
);
i64_arg!(
    /// `new_price` of a modify: i64 ticks.
    NewPrice,
    "new_price"
);

/// `post_only`: a `bool` (numpy's `bool_` too), never an int.
#[derive(Clone, Copy, Debug)]
pub struct PostOnly(pub bool);

impl<'a, 'py> FromPyObject<'a, 'py> for PostOnly {
    type Error = PyErr;

    #[inline]
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBool>() {
            return Ok(PostOnly(b.is_true()));
        }
        obj.extract::<bool>().map(PostOnly).map_err(|_| {
            PyTypeError::new_err(format!(
                "post_only must be a bool, got {} ({})",
                type_name(&obj),
                shown(&obj)
            ))
        })
    }
}

/// Largest capacity the arena accepts (slot indices are u32 and `u32::MAX` means "none").
pub const MAX_CAPACITY: u64 = u32::MAX as u64 - 1;

/// `capacity`: number of order slots, 1 ..= 4,294,967,294.
#[derive(Clone, Copy, Debug)]
pub struct Capacity(pub usize);

impl<'a, 'py> FromPyObject<'a, 'py> for Capacity {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let v = extract_u64(obj, "capacity", MAX_CAPACITY, "4294967294").map_err(|e| {
            if e.is_instance_of::<PyValueError>(obj.py()) {
                PyValueError::new_err(format!(
                    "capacity must be in 1 ..= 4294967294, got {}",
                    shown(&obj)
                ))
            } else {
                e
            }
        })?;
        if v == 0 {
            return Err(PyValueError::new_err(
                "capacity must be in 1 ..= 4294967294, got 0",
            ));
        }
        Ok(Capacity(v as usize))
    }
}

/// Methods shared by the core enums for name lookup.
pub trait Named: Copy + 'static {
    /// Every variant in discriminant order.
    fn all() -> &'static [Self];
    /// The Python value of the variant (the name; `""` for `Reason::None`).
    fn py_name(self) -> &'static str;
    /// The `tradecore.enums` members of this enum in the cache, by discriminant.
    fn members(cache: &EnumCache) -> &[Py<PyAny>];
}

macro_rules! named {
    ($($t:ty => $field:ident),+) => {$(
        impl Named for $t {
            #[inline]
            fn all() -> &'static [Self] {
                <$t>::ALL
            }
            #[inline]
            fn py_name(self) -> &'static str {
                self.name()
            }
            #[inline]
            fn members(cache: &EnumCache) -> &[Py<PyAny>] {
                &cache.$field
            }
        }
    )+};
}
named!(
    Side => sides,
    OrderType => order_types,
    TimeInForce => tifs,
    Stp => stps,
    EventKind => kinds,
    Reason => reasons
);

fn valid_names<T: Named>() -> String {
    T::all()
        .iter()
        .map(|v| format!("'{}'", v.py_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An enum argument: a `tradecore.enums` member or its name.
#[inline]
pub fn extract_enum<T: Named>(
    obj: Borrowed<'_, '_, PyAny>,
    name: &str,
    class: &str,
) -> PyResult<T> {
    // Fast path: the member object itself (a pointer compare per candidate).
    if let Ok(cache) = enums(obj.py()) {
        let members = T::members(cache);
        if let Some(i) = members.iter().position(|m| m.as_ptr() == obj.as_ptr()) {
            if let Some(&v) = T::all().get(i) {
                return Ok(v);
            }
        }
    }
    let Ok(s) = obj.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a tradecore.{class} or its name as a str, got {} ({})",
            type_name(&obj),
            shown(&obj)
        )));
    };
    let text = s.to_str()?;
    T::all()
        .iter()
        .copied()
        .find(|v| v.py_name() == text)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{name} must be one of {} (tradecore.{class}), got '{text}'",
                valid_names::<T>()
            ))
        })
}

macro_rules! enum_arg {
    ($(#[$doc:meta])* $ty:ident, $rust:ty, $name:literal, $class:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $ty(pub $rust);

        impl<'a, 'py> FromPyObject<'a, 'py> for $ty {
            type Error = PyErr;

            #[inline]
            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                extract_enum::<$rust>(obj, $name, $class).map($ty)
            }
        }
    };
}

enum_arg!(
    /// `side`.
    SideArg,
    Side,
    "side",
    "Side"
);
enum_arg!(
    /// `order_type`.
    OrderTypeArg,
    OrderType,
    "order_type",
    "OrderType"
);
enum_arg!(
    /// `tif`.
    TifArg,
    TimeInForce,
    "tif",
    "TimeInForce"
);
enum_arg!(
    /// `stp`.
    StpArg,
    Stp,
    "stp",
    "Stp"
);
enum_arg!(
    /// `kind` of an event.
    KindArg,
    EventKind,
    "kind",
    "EventKind"
);
enum_arg!(
    /// `reason` of an event.
    ReasonArg,
    Reason,
    "reason",
    "Reason"
);

/// The Python objects that events hand out: enum members and plain-string names, by code.
pub struct EnumCache {
    /// `Side` members by discriminant.
    pub sides: Vec<Py<PyAny>>,
    /// `OrderType` members by discriminant.
    pub order_types: Vec<Py<PyAny>>,
    /// `TimeInForce` members by discriminant.
    pub tifs: Vec<Py<PyAny>>,
    /// `Stp` members by discriminant.
    pub stps: Vec<Py<PyAny>>,
    /// `EventKind` members by discriminant.
    pub kinds: Vec<Py<PyAny>>,
    /// `Reason` members by discriminant.
    pub reasons: Vec<Py<PyAny>>,
    /// Plain `str` names of the event kinds (for `as_tuple`).
    pub kind_names: Vec<Py<PyString>>,
    /// Plain `str` names of the reasons (`""` for none).
    pub reason_names: Vec<Py<PyString>>,
}

/// The members of one enum class, and their plain-string names, by discriminant.
type MembersAndNames = (Vec<Py<PyAny>>, Vec<Py<PyString>>);

static ENUMS: PyOnceLock<EnumCache> = PyOnceLock::new();

fn load_members<T: Named>(module: &Bound<'_, PyModule>, class: &str) -> PyResult<MembersAndNames> {
    let py = module.py();
    let cls = module.getattr(class)?;
    let members = cls
        .try_iter()?
        .map(|m| m.map(Bound::unbind))
        .collect::<PyResult<Vec<_>>>()?;
    let expected = T::all();
    let mismatch = || {
        errors::internal(
            py,
            format!(
                "tradecore.enums.{class} does not match the core: expected the values {} in \
                 this order",
                valid_names::<T>()
            ),
        )
    };
    if members.len() != expected.len() {
        return Err(mismatch());
    }
    let mut names = Vec::with_capacity(expected.len());
    for (member, variant) in members.iter().zip(expected) {
        let value = member.bind(py).cast::<PyString>().map_err(|_| mismatch())?;
        if value.to_str()? != variant.py_name() {
            return Err(mismatch());
        }
        names.push(PyString::intern(py, variant.py_name()).unbind());
    }
    Ok((members, names))
}

/// The enum cache, built on first use.
#[inline]
pub fn enums(py: Python<'_>) -> PyResult<&'static EnumCache> {
    ENUMS.get_or_try_init(py, || {
        let module = py.import("tradecore.enums")?;
        let (kinds, kind_names) = load_members::<EventKind>(&module, "EventKind")?;
        let (reasons, reason_names) = load_members::<Reason>(&module, "Reason")?;
        let (sides, _) = load_members::<Side>(&module, "Side")?;
        let (order_types, _) = load_members::<OrderType>(&module, "OrderType")?;
        let (tifs, _) = load_members::<TimeInForce>(&module, "TimeInForce")?;
        let (stps, _) = load_members::<Stp>(&module, "Stp")?;
        Ok(EnumCache {
            sides,
            order_types,
            tifs,
            stps,
            kinds,
            reasons,
            kind_names,
            reason_names,
        })
    })
}
