//! The batch path: numpy record layouts for operations and events, and the loop that applies a
//! whole array of operations to a book with the GIL released.
//!
//! Layouts (little-endian, packed at the offsets below, which are the single source of truth:
//! the dtypes exported to Python are built from these tables):
//! * `OP_DTYPE`, 48 bytes: order_id u8 @0, price i8 @8, qty u8 @16, timestamp u8 @24,
//!   account u4 @32, op u1 @36, side u1 @37, order_type u1 @38, tif u1 @39, stp u1 @40,
//!   post_only u1 @41. For modify rows, price/qty are the new price/new quantity.
//! * `EVENT_DTYPE`, 56 bytes: order_id u8 @0, other_id u8 @8, price i8 @16, qty u8 @24,
//!   leaves u8 @32, other_leaves u8 @40, op_index u4 @48, kind u1 @52, reason u1 @53.
//!
//! Steps of [`process`]: check the array (numpy array, exact dtype, 1-D, C-contiguous); pass
//! 1 copies it chunk by chunk ([`CHUNK_ROWS`] rows) into a scratch buffer and checks the code
//! fields of every row (six byte compares; a failing row is then decoded for the message), so
//! an invalid code anywhere rejects the whole batch before any operation runs (the book is
//! untouched); a batch of one chunk is applied from that same copy, and longer ones: pass 2 copies each chunk again (the caller may mutate the array once
//! the GIL is gone, so the core only ever reads our copy) and applies it with the GIL
//! released, with the same core calls as the per-call API (so the events are identical),
//! encoding the events as it goes; then numpy gets the bytes as a writable array.
//!
//! Cost: O(rows + events). Chunking keeps the input scratch at about 3 MB, warm in cache,
//! whatever the batch size; the scratch and output buffers are kept per thread (up to
//! [`SCRATCH_KEEP_BYTES`] each) and reused by every book, because fresh memory costs a page
//! fault per 4 KiB and evicts the book from cache: measured, one 1M-row call on fresh
//! buffers ran at less than half the speed of the same rows in 64k-row calls.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyDict};

use tradecore_book::{Book, Event, Matching, OrderRequest, OrderType, Side, Stp, TimeInForce};

use crate::convert::{type_name, Named};
use crate::errors;

/// Operation code of a submit row.
pub const OP_SUBMIT: u8 = 0;
/// Operation code of a cancel row.
pub const OP_CANCEL: u8 = 1;
/// Operation code of a modify row.
pub const OP_MODIFY: u8 = 2;

/// Size of one operation record.
pub const OP_ITEMSIZE: usize = 48;
/// Size of one event record.
pub const EVENT_ITEMSIZE: usize = 56;

mod op {
    pub const ORDER_ID: usize = 0;
    pub const PRICE: usize = 8;
    pub const QTY: usize = 16;
    pub const TIMESTAMP: usize = 24;
    pub const ACCOUNT: usize = 32;
    pub const OP: usize = 36;
    pub const SIDE: usize = 37;
    pub const ORDER_TYPE: usize = 38;
    pub const TIF: usize = 39;
    pub const STP: usize = 40;
    pub const POST_ONLY: usize = 41;
}

mod ev {
    pub const ORDER_ID: usize = 0;
    pub const OTHER_ID: usize = 8;
    pub const PRICE: usize = 16;
    pub const QTY: usize = 24;
    pub const LEAVES: usize = 32;
    pub const OTHER_LEAVES: usize = 40;
    pub const OP_INDEX: usize = 48;
    pub const KIND: usize = 52;
    pub const REASON: usize = 53;
}

/// (name, numpy format, offset) of each operation field.
const OP_FIELDS: [(&str, &str, usize); 11] = [
    ("order_id", "<u8", op::ORDER_ID),
    ("price", "<i8", op::PRICE),
    ("qty", "<u8", op::QTY),
    ("timestamp", "<u8", op::TIMESTAMP),
    ("account", "<u4", op::ACCOUNT),
    ("op", "u1", op::OP),
    ("side", "u1", op::SIDE),
    ("order_type", "u1", op::ORDER_TYPE),
    ("tif", "u1", op::TIF),
    ("stp", "u1", op::STP),
    ("post_only", "u1", op::POST_ONLY),
];

/// (name, numpy format, offset) of each event field.
const EVENT_FIELDS: [(&str, &str, usize); 9] = [
    ("order_id", "<u8", ev::ORDER_ID),
    ("other_id", "<u8", ev::OTHER_ID),
    ("price", "<i8", ev::PRICE),
    ("qty", "<u8", ev::QTY),
    ("leaves", "<u8", ev::LEAVES),
    ("other_leaves", "<u8", ev::OTHER_LEAVES),
    ("op_index", "<u4", ev::OP_INDEX),
    ("kind", "u1", ev::KIND),
    ("reason", "u1", ev::REASON),
];

static OP_DTYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static EVENT_DTYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NDARRAY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static FROMBUFFER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn make_dtype<'py>(
    np: &Bound<'py, PyModule>,
    fields: &[(&str, &str, usize)],
    itemsize: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let py = np.py();
    let spec = PyDict::new(py);
    spec.set_item("names", fields.iter().map(|f| f.0).collect::<Vec<_>>())?;
    spec.set_item("formats", fields.iter().map(|f| f.1).collect::<Vec<_>>())?;
    spec.set_item("offsets", fields.iter().map(|f| f.2).collect::<Vec<_>>())?;
    spec.set_item("itemsize", itemsize)?;
    np.getattr("dtype")?.call1((spec,))
}

/// Build the dtypes and add `OP_DTYPE`, `EVENT_DTYPE` and the op codes to the module.
pub fn add_to_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let np = py.import("numpy")?;
    let op_dtype = make_dtype(&np, &OP_FIELDS, OP_ITEMSIZE)?;
    let event_dtype = make_dtype(&np, &EVENT_FIELDS, EVENT_ITEMSIZE)?;
    let _ = OP_DTYPE.set(py, op_dtype.clone().unbind());
    let _ = EVENT_DTYPE.set(py, event_dtype.clone().unbind());
    let _ = NDARRAY.set(py, np.getattr("ndarray")?.unbind());
    let _ = FROMBUFFER.set(py, np.getattr("frombuffer")?.unbind());
    m.add("OP_DTYPE", op_dtype)?;
    m.add("EVENT_DTYPE", event_dtype)?;
    m.add("OP_SUBMIT", OP_SUBMIT)?;
    m.add("OP_CANCEL", OP_CANCEL)?;
    m.add("OP_MODIFY", OP_MODIFY)?;
    Ok(())
}

fn cached<'py>(py: Python<'py>, cell: &PyOnceLock<Py<PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    cell.get(py)
        .map(|o| o.bind(py).clone())
        .ok_or_else(|| errors::internal(py, "tradecore._core was not initialised"))
}

/// One decoded operation row.
#[derive(Clone, Copy, Debug)]
enum Op {
    Submit(OrderRequest),
    Cancel(u64),
    Modify(u64, i64, u64),
}

/// A row whose code byte is not valid.
#[derive(Debug)]
struct BadRow {
    row: usize,
    field: &'static str,
    value: u8,
    valid: String,
}

#[inline]
fn u64_at(rec: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&rec[off..off + 8]);
    u64::from_le_bytes(b)
}

#[inline]
fn i64_at(rec: &[u8], off: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&rec[off..off + 8]);
    i64::from_le_bytes(b)
}

#[inline]
fn u32_at(rec: &[u8], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&rec[off..off + 4]);
    u32::from_le_bytes(b)
}

fn codes<T: Named>() -> String {
    T::all()
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{i}={}", v.py_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn code<T: Named>(rec: &[u8], row: usize, field: &'static str, off: usize) -> Result<T, BadRow> {
    let value = rec[off];
    T::all().get(value as usize).copied().ok_or_else(|| BadRow {
        row,
        field,
        value,
        valid: codes::<T>(),
    })
}

/// Decode and validate one record. Every code field is checked on every row (zeroed fields are
/// valid codes), so garbage never hides in a field the operation does not read.
fn decode(rec: &[u8], row: usize) -> Result<Op, BadRow> {
    let side: Side = code(rec, row, "side", op::SIDE)?;
    let order_type: OrderType = code(rec, row, "order_type", op::ORDER_TYPE)?;
    let tif: TimeInForce = code(rec, row, "tif", op::TIF)?;
    let stp: Stp = code(rec, row, "stp", op::STP)?;
    let post_only = match rec[op::POST_ONLY] {
        0 => false,
        1 => true,
        value => {
            return Err(BadRow {
                row,
                field: "post_only",
                value,
                valid: "0=False, 1=True".to_owned(),
            })
        }
    };
    let order_id = u64_at(rec, op::ORDER_ID);
    let price = i64_at(rec, op::PRICE);
    let qty = u64_at(rec, op::QTY);
    match rec[op::OP] {
        OP_SUBMIT => Ok(Op::Submit(OrderRequest {
            order_id,
            account: u32_at(rec, op::ACCOUNT),
            side,
            price,
            qty,
            order_type,
            tif,
            post_only,
            stp,
            timestamp: u64_at(rec, op::TIMESTAMP),
        })),
        OP_CANCEL => Ok(Op::Cancel(order_id)),
        OP_MODIFY => Ok(Op::Modify(order_id, price, qty)),
        value => Err(BadRow {
            row,
            field: "op",
            value,
            valid: "0=SUBMIT, 1=CANCEL, 2=MODIFY".to_owned(),
        }),
    }
}

#[inline(always)]
fn encode(out: &mut Vec<u8>, e: &Event, row: u32) {
    let mut r = [0u8; EVENT_ITEMSIZE];
    r[ev::ORDER_ID..ev::ORDER_ID + 8].copy_from_slice(&e.order_id.to_le_bytes());
    r[ev::OTHER_ID..ev::OTHER_ID + 8].copy_from_slice(&e.other_id.to_le_bytes());
    r[ev::PRICE..ev::PRICE + 8].copy_from_slice(&e.price.to_le_bytes());
    r[ev::QTY..ev::QTY + 8].copy_from_slice(&e.qty.to_le_bytes());
    r[ev::LEAVES..ev::LEAVES + 8].copy_from_slice(&e.leaves.to_le_bytes());
    r[ev::OTHER_LEAVES..ev::OTHER_LEAVES + 8].copy_from_slice(&e.other_leaves.to_le_bytes());
    r[ev::OP_INDEX..ev::OP_INDEX + 4].copy_from_slice(&row.to_le_bytes());
    r[ev::KIND] = e.kind as u8;
    r[ev::REASON] = e.reason as u8;
    out.extend_from_slice(&r);
}

/// Rows ahead whose index entry is prefetched.
const PREFETCH_FAR: usize = 16;
/// Rows ahead whose order slot is prefetched (its index entry arrived by then).
const PREFETCH_NEAR: usize = 8;
/// Rows copied and applied at a time.
pub const CHUNK_ROWS: usize = 1 << 16;

/// True if every code field of `rec` holds a valid code (the check `decode` makes, without
/// building the operation).
#[inline]
fn codes_valid(rec: &[u8]) -> bool {
    // The code fields are adjacent (op @36 ..= post_only @41): one bounds check, then six
    // compares without branches between them.
    let c = &rec[op::OP..=op::POST_ONLY];
    (c[0] <= OP_MODIFY)
        & ((c[op::SIDE - op::OP] as usize) < Side::ALL.len())
        & ((c[op::ORDER_TYPE - op::OP] as usize) < OrderType::ALL.len())
        & ((c[op::TIF - op::OP] as usize) < TimeInForce::ALL.len())
        & ((c[op::STP - op::OP] as usize) < Stp::ALL.len())
        & (c[op::POST_ONLY - op::OP] <= 1)
}

/// Check the codes of every row of a chunk; the first bad row is the error (named by
/// `decode`, which makes the same checks).
fn validate(bytes: &[u8], first_row: usize) -> Result<(), BadRow> {
    for (i, rec) in bytes.chunks_exact(OP_ITEMSIZE).enumerate() {
        if !codes_valid(rec) {
            decode(rec, first_row + i)?;
            debug_assert!(false, "codes_valid and decode disagree");
        }
    }
    Ok(())
}

/// Apply the rows of one chunk in order (runs without the GIL), appending encoded events to
/// `out`. The rows were validated by pass 1; a row that no longer decodes means the caller
/// changed the array during the call, reported as an error after the rows before it.
fn run(
    book: &mut Book,
    buf: &mut Vec<Event>,
    bytes: &[u8],
    first_row: usize,
    out: &mut Vec<u8>,
) -> Result<(), BadRow> {
    // The ids of upcoming rows are known: fetch their index entries PREFETCH_FAR rows ahead
    // and their order slots PREFETCH_NEAR rows ahead, so the cache misses of cancels and
    // modifies on a large book overlap instead of stalling one after another.
    let rows = bytes.len() / OP_ITEMSIZE;
    let id_of = |row: usize| u64_at(&bytes[row * OP_ITEMSIZE..], op::ORDER_ID);
    for (i, rec) in bytes.chunks_exact(OP_ITEMSIZE).enumerate() {
        if i + PREFETCH_FAR < rows {
            book.prefetch_index(id_of(i + PREFETCH_FAR));
        }
        if i + PREFETCH_NEAR < rows {
            book.prefetch_order(id_of(i + PREFETCH_NEAR));
        }
        let row = first_row + i;
        buf.clear();
        match decode(rec, row)? {
            Op::Submit(ref req) => book.submit(req, buf),
            Op::Cancel(id) => book.cancel(id, buf),
            Op::Modify(id, price, qty) => book.modify(id, price, qty, buf),
        }
        for e in buf.iter() {
            encode(out, e, row as u32);
        }
    }
    Ok(())
}

/// Outcome of the batch.
pub enum Outcome<'py> {
    /// The events array.
    Done(Bound<'py, PyAny>),
    /// A row with an invalid code (nothing was applied).
    Invalid(String),
    /// The array changed during the call: the rows before `row` were applied.
    Changed(String),
    /// The core panicked; the book is in an unknown state.
    Panicked(String),
}

/// The array as a flat `uint8` view (after checking it) and its number of rows.
fn open_ops<'py>(py: Python<'py>, ops: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, usize)> {
    let ndarray = cached(py, &NDARRAY)?;
    let op_dtype = cached(py, &OP_DTYPE)?;
    if !ops.is_instance(&ndarray)? {
        return Err(PyTypeError::new_err(format!(
            "ops must be a numpy.ndarray with dtype tradecore.OP_DTYPE, got {}",
            type_name(&ops.as_borrowed())
        )));
    }
    let dtype = ops.getattr("dtype")?;
    if !dtype.eq(&op_dtype)? {
        return Err(PyValueError::new_err(format!(
            "ops must have dtype tradecore.OP_DTYPE {op_dtype}, got dtype {dtype}; build it \
             with numpy.zeros(n, dtype=tradecore.OP_DTYPE)"
        )));
    }
    let ndim: usize = ops.getattr("ndim")?.extract()?;
    if ndim != 1 {
        return Err(PyValueError::new_err(format!(
            "ops must be a 1-dimensional array, got {ndim} dimensions"
        )));
    }
    if !ops.getattr("flags")?.getattr("c_contiguous")?.is_truthy()? {
        return Err(PyValueError::new_err(
            "ops must be C-contiguous; pass numpy.ascontiguousarray(ops)",
        ));
    }
    let rows: usize = ops.len()?;
    if rows > u32::MAX as usize + 1 {
        return Err(PyValueError::new_err(format!(
            "ops has {rows} rows; a batch holds at most 2**32 rows (op_index is u4)"
        )));
    }
    Ok((ops.call_method1("view", ("u1",))?, rows))
}

/// Copy rows `[first, first + n)` of the flat view into `scratch` (GIL held).
fn copy_rows(
    py: Python<'_>,
    flat: &Bound<'_, PyAny>,
    first: usize,
    n: usize,
    scratch: &mut Vec<u8>,
) -> PyResult<usize> {
    let slice = pyo3::types::PySlice::new(
        py,
        (first * OP_ITEMSIZE) as isize,
        ((first + n) * OP_ITEMSIZE) as isize,
        1,
    );
    let view = flat.get_item(slice)?;
    let buffer = PyBuffer::<u8>::get(&view)?;
    let len = buffer.item_count();
    if len != n * OP_ITEMSIZE {
        return Err(errors::internal(
            py,
            format!("ops chunk has {len} bytes for {n} rows"),
        ));
    }
    if scratch.len() < len {
        scratch.resize(len, 0);
    }
    buffer.copy_to_slice(py, &mut scratch[..len])?;
    Ok(len)
}

thread_local! {
    /// (input chunk, encoded events) scratch of this thread, reused by every book.
    static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = const {
        std::cell::RefCell::new((Vec::new(), Vec::new()))
    };
}

/// Largest scratch buffer a thread keeps between batches; bigger ones are freed after the
/// call, so a one-off huge batch does not pin its memory.
pub const SCRATCH_KEEP_BYTES: usize = 256 << 20;

/// Free `v` if it grew beyond [`SCRATCH_KEEP_BYTES`].
fn trim(v: &mut Vec<u8>) {
    if v.capacity() > SCRATCH_KEEP_BYTES {
        *v = Vec::new();
    }
}

/// Validate, then apply the whole array in chunks; see the module docs.
pub fn process<'py>(
    py: Python<'py>,
    book: &mut Book,
    buf: &mut Vec<Event>,
    ops: &Bound<'py, PyAny>,
) -> PyResult<Outcome<'py>> {
    let (flat, rows) = open_ops(py, ops)?;
    let (mut input, mut out) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let result = process_with(py, book, buf, &flat, rows, &mut input, &mut out);
    trim(&mut input);
    trim(&mut out);
    SCRATCH.with(|s| *s.borrow_mut() = (input, out));
    result
}

fn process_with<'py>(
    py: Python<'py>,
    book: &mut Book,
    buf: &mut Vec<Event>,
    flat: &Bound<'py, PyAny>,
    rows: usize,
    input: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> PyResult<Outcome<'py>> {
    // A batch of one chunk is validated and applied from a single copy; a longer one is
    // validated whole first (all or nothing), then copied again chunk by chunk to apply.
    let single = rows <= CHUNK_ROWS;
    for first in (0..rows).step_by(CHUNK_ROWS) {
        let n = CHUNK_ROWS.min(rows - first);
        let len = copy_rows(py, flat, first, n, input)?;
        if let Err(bad) = validate(&input[..len], first) {
            return Ok(Outcome::Invalid(format!(
                "ops[{}].{} = {} is not a valid code (valid: {}); no operation was applied",
                bad.row, bad.field, bad.value, bad.valid
            )));
        }
    }
    out.clear();
    out.reserve(rows * EVENT_ITEMSIZE);
    for first in (0..rows).step_by(CHUNK_ROWS) {
        let n = CHUNK_ROWS.min(rows - first);
        let len = if single {
            rows * OP_ITEMSIZE
        } else {
            copy_rows(py, flat, first, n, input)?
        };
        let bytes = &input[..len];
        let step =
            py.detach(|| catch_unwind(AssertUnwindSafe(|| run(book, buf, bytes, first, out))));
        match step {
            Ok(Ok(())) => {}
            Ok(Err(bad)) => {
                return Ok(Outcome::Changed(format!(
                    "ops[{}].{} = {} is not a valid code: the array was changed while being \
                     processed; rows 0..{} were applied",
                    bad.row, bad.field, bad.value, bad.row
                )))
            }
            Err(payload) => return Ok(Outcome::Panicked(errors::panic_message(payload.as_ref()))),
        }
    }
    Ok(Outcome::Done(events_array(py, out)?))
}

/// The events array (`EVENT_DTYPE`, writable) over a copy of `out`.
fn events_array<'py>(py: Python<'py>, out: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let frombuffer = cached(py, &FROMBUFFER)?;
    let event_dtype = cached(py, &EVENT_DTYPE)?;
    let bytes = PyByteArray::new(py, out);
    frombuffer.call1((bytes, event_dtype))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tradecore_book::{EventKind, Reason};

    fn submit_row(id: u64, side: Side, price: i64, qty: u64) -> [u8; OP_ITEMSIZE] {
        let mut r = [0u8; OP_ITEMSIZE];
        r[op::ORDER_ID..op::ORDER_ID + 8].copy_from_slice(&id.to_le_bytes());
        r[op::PRICE..op::PRICE + 8].copy_from_slice(&price.to_le_bytes());
        r[op::QTY..op::QTY + 8].copy_from_slice(&qty.to_le_bytes());
        r[op::ACCOUNT..op::ACCOUNT + 4].copy_from_slice(&7u32.to_le_bytes());
        r[op::OP] = OP_SUBMIT;
        r[op::SIDE] = side as u8;
        r[op::STP] = Stp::CancelNewest as u8;
        r
    }

    #[test]
    fn layouts_are_packed_inside_their_itemsize() {
        let width = |f: &str| {
            if f.ends_with('8') {
                8
            } else if f.ends_with('4') {
                4
            } else {
                1
            }
        };
        for (fields, size) in [
            (&OP_FIELDS[..], OP_ITEMSIZE),
            (&EVENT_FIELDS[..], EVENT_ITEMSIZE),
        ] {
            let mut spans: Vec<(usize, usize)> = fields
                .iter()
                .map(|(_, f, off)| (*off, off + width(f)))
                .collect();
            spans.sort_unstable();
            for w in spans.windows(2) {
                assert!(w[0].1 <= w[1].0, "fields overlap: {w:?}");
            }
            assert!(spans.last().is_some_and(|s| s.1 <= size));
        }
    }

    #[test]
    fn run_matches_the_per_call_core_and_encodes_every_field() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&submit_row(1, Side::Sell, 101, 5));
        bytes.extend_from_slice(&submit_row(2, Side::Buy, 101, 3));
        let (mut book, mut buf, mut out) = (Book::with_capacity(8), Vec::new(), Vec::new());
        run(&mut book, &mut buf, &bytes, 0, &mut out).expect("valid rows");

        let mut reference = Book::with_capacity(8);
        let mut expected = Vec::new();
        reference.submit(
            &OrderRequest::limit(1, 7, Side::Sell, 101, 5),
            &mut expected,
        );
        let first = expected.len();
        reference.submit(&OrderRequest::limit(2, 7, Side::Buy, 101, 3), &mut expected);
        let mut want = Vec::new();
        for (i, e) in expected.iter().enumerate() {
            encode(&mut want, e, u32::from(i >= first));
        }
        assert_eq!(out, want);
        // ACCEPTED(1), ACCEPTED(2), then STP cancels the taker (same account 7).
        assert_eq!(out.len(), 3 * EVENT_ITEMSIZE);
        let last = &out[2 * EVENT_ITEMSIZE..];
        assert_eq!(u64_at(last, ev::ORDER_ID), 2);
        assert_eq!(u32_at(last, ev::OP_INDEX), 1);
        assert_eq!(last[ev::KIND], EventKind::Cancelled as u8);
        assert_eq!(last[ev::REASON], Reason::SelfTrade as u8);
    }

    #[test]
    fn the_fast_code_check_agrees_with_decode() {
        // Every value of each code field, with the other fields at every valid code of their
        // own in turn (first and last), and every all-valid combination.
        let fields = [
            op::OP,
            op::SIDE,
            op::ORDER_TYPE,
            op::TIF,
            op::STP,
            op::POST_ONLY,
        ];
        let base = submit_row(9, Side::Buy, 100, 1);
        for &f in &fields {
            for v in 0..=255u8 {
                for other in [0u8, 1] {
                    let mut r = base;
                    for &g in &fields {
                        r[g] = other;
                    }
                    r[f] = v;
                    assert_eq!(
                        codes_valid(&r),
                        decode(&r, 0).is_ok(),
                        "field @{f} = {v}, others = {other}"
                    );
                }
            }
        }
        for code in 0..3u8 {
            for side in 0..2u8 {
                for ty in 0..2u8 {
                    for tif in 0..3u8 {
                        for stp in 0..4u8 {
                            for po in 0..2u8 {
                                let mut r = base;
                                let vals = [code, side, ty, tif, stp, po];
                                for (&f, &v) in fields.iter().zip(&vals) {
                                    r[f] = v;
                                }
                                assert!(codes_valid(&r) && decode(&r, 0).is_ok(), "{vals:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_bad_row_anywhere_applies_nothing() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&submit_row(1, Side::Sell, 101, 5));
        let mut bad = submit_row(2, Side::Buy, 99, 3);
        bad[op::TIF] = 3;
        bytes.extend_from_slice(&bad);
        // Pass 1 finds it before pass 2 applies anything (process() runs them in that order;
        // tests/unit/test_batch.py checks the book is untouched, also past the first chunk).
        let err = validate(&bytes, 0).expect_err("row 1 is invalid");
        assert_eq!((err.row, err.field, err.value), (1, "tif", 3));
        // Row numbers continue across chunks: the bad row alone, as the chunk at row 70,000.
        let err = validate(&bytes[OP_ITEMSIZE..], 70_000).expect_err("row 70000 is invalid");
        assert_eq!(err.row, 70_000);
    }
}
