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
//! untouched). A batch of one chunk is then applied from that same copy; a longer one copies
//! each chunk again (the caller may mutate the array once the GIL is gone, so the core only
//! ever reads our copy) and checks the copy's codes again (a row changed into an invalid code
//! since pass 1 is reported after the rows before it were applied). Each chunk is applied
//! with the GIL released, with the same core calls as the per-call API (so the events are
//! identical), its events encoded into a warm scratch buffer, then copied into the output.
//!
//! The output array is allocated once per call with `numpy.empty` (numpy's allocator asks for
//! huge pages for large arrays, so filling it costs few page faults: measured, copying 1M
//! events into fresh `bytearray` pages cost about twice as much), sized for one event per row
//! (every operation yields at least one event); if the events outgrow it, a larger one takes
//! over (doubling, copied once), and a partly filled array is returned as a view of its
//! filled rows. Reading PyO3's buffers in place (no copy) is not done: PyO3 0.30 deprecates
//! its safe slice views of buffers as unsound.
//!
//! Cost: O(rows + events). Chunking keeps the input scratch at about 3 MB, warm in cache,
//! whatever the batch size; the scratch buffers are kept per thread (up to
//! [`SCRATCH_KEEP_BYTES`] each) and reused by every book, because fresh memory costs a page
//! fault per 4 KiB and evicts the book from cache.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PySlice};

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
static EMPTY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

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
    let _ = EMPTY.set(py, np.getattr("empty")?.unbind());
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

/// The variant with code `b`; codes were checked before, so the fallback is never taken.
#[inline(always)]
fn pick<T: Named>(b: u8) -> T {
    let all = T::all();
    all.get(b as usize).copied().unwrap_or(all[0])
}

/// Decode a record whose codes passed [`codes_valid`] (the same result as [`decode`]).
#[inline(always)]
fn decode_valid(rec: &[u8; OP_ITEMSIZE]) -> Op {
    let order_id = u64_at(rec, op::ORDER_ID);
    match rec[op::OP] {
        OP_CANCEL => Op::Cancel(order_id),
        OP_MODIFY => Op::Modify(order_id, i64_at(rec, op::PRICE), u64_at(rec, op::QTY)),
        _ => Op::Submit(OrderRequest {
            order_id,
            account: u32_at(rec, op::ACCOUNT),
            side: pick(rec[op::SIDE]),
            price: i64_at(rec, op::PRICE),
            qty: u64_at(rec, op::QTY),
            order_type: pick(rec[op::ORDER_TYPE]),
            tif: pick(rec[op::TIF]),
            post_only: rec[op::POST_ONLY] != 0,
            stp: pick(rec[op::STP]),
            timestamp: u64_at(rec, op::TIMESTAMP),
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

/// The first row of `bytes` whose codes are not valid, if any.
fn first_invalid(bytes: &[u8]) -> Option<usize> {
    bytes
        .chunks_exact(OP_ITEMSIZE)
        .position(|rec| !codes_valid(rec))
}

/// The error for row `row` (record `rec`), which failed [`codes_valid`].
fn bad_row(rec: &[u8], row: usize) -> BadRow {
    match decode(rec, row) {
        Err(bad) => bad,
        // Unreachable: `codes_valid` and `decode` make the same checks (a test proves it).
        Ok(_) => BadRow {
            row,
            field: "op",
            value: rec[op::OP],
            valid: "0=SUBMIT, 1=CANCEL, 2=MODIFY".to_owned(),
        },
    }
}

/// Apply the rows of one chunk in order (runs without the GIL), appending encoded events to
/// `out`. Every row's codes were checked on this very copy.
fn run(book: &mut Book, buf: &mut Vec<Event>, bytes: &[u8], first_row: usize, out: &mut Vec<u8>) {
    // The ids of upcoming rows are known: fetch their index entries PREFETCH_FAR rows ahead
    // and their order slots PREFETCH_NEAR rows ahead, so the cache misses of cancels and
    // modifies on a large book overlap instead of stalling one after another.
    let rows = bytes.len() / OP_ITEMSIZE;
    let id_of = |row: usize| u64_at(&bytes[row * OP_ITEMSIZE..], op::ORDER_ID);
    for (i, rec) in bytes.chunks_exact(OP_ITEMSIZE).enumerate() {
        // Always taken: chunks_exact yields OP_ITEMSIZE bytes.
        let Ok(rec) = <&[u8; OP_ITEMSIZE]>::try_from(rec) else {
            continue;
        };
        if i + PREFETCH_FAR < rows {
            book.prefetch_index(id_of(i + PREFETCH_FAR));
        }
        if i + PREFETCH_NEAR < rows {
            book.prefetch_order(id_of(i + PREFETCH_NEAR));
        }
        let row = (first_row + i) as u32;
        buf.clear();
        match decode_valid(rec) {
            Op::Submit(ref req) => book.submit(req, buf),
            Op::Cancel(id) => book.cancel(id, buf),
            Op::Modify(id, price, qty) => book.modify(id, price, qty, buf),
        }
        for e in buf.iter() {
            encode(out, e, row);
        }
    }
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

/// Copy rows `[first, first + n)` of the flat byte view into `scratch[..n * OP_ITEMSIZE]`
/// (GIL held).
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

/// The events array being filled: a fresh `numpy.empty` array of `EVENT_DTYPE` and its byte
/// view, written a chunk of events at a time (GIL held).
struct EventsOut<'py> {
    array: Bound<'py, PyAny>,
    flat: Bound<'py, PyAny>,
    capacity: usize,
    filled: usize,
}

impl<'py> EventsOut<'py> {
    fn new(py: Python<'py>, capacity: usize) -> PyResult<Self> {
        let array = cached(py, &EMPTY)?.call1((capacity, cached(py, &EVENT_DTYPE)?))?;
        let flat = array.call_method1("view", ("u1",))?;
        Ok(EventsOut {
            array,
            flat,
            capacity,
            filled: 0,
        })
    }

    /// Rows `[from, to)` of the byte view.
    fn rows(&self, py: Python<'py>, from: usize, to: usize) -> PyResult<Bound<'py, PyAny>> {
        self.flat.get_item(PySlice::new(
            py,
            (from * EVENT_ITEMSIZE) as isize,
            (to * EVENT_ITEMSIZE) as isize,
            1,
        ))
    }

    /// Append encoded events, growing the array (doubling) if they do not fit.
    fn append(&mut self, py: Python<'py>, events: &[u8]) -> PyResult<()> {
        let n = events.len() / EVENT_ITEMSIZE;
        if n == 0 {
            return Ok(());
        }
        if self.filled + n > self.capacity {
            let bigger = EventsOut::new(py, (self.capacity * 2).max(self.filled + n))?;
            bigger
                .rows(py, 0, self.filled)?
                .set_item(PySlice::full(py), self.rows(py, 0, self.filled)?)?;
            *self = EventsOut {
                filled: self.filled,
                ..bigger
            };
        }
        let target = self.rows(py, self.filled, self.filled + n)?;
        PyBuffer::<u8>::get(&target)?.copy_from_slice(py, events)?;
        self.filled += n;
        Ok(())
    }

    /// The array (a view of its filled rows if it is not full).
    fn finish(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.filled == self.capacity {
            Ok(self.array)
        } else {
            self.array
                .get_item(PySlice::new(py, 0, self.filled as isize, 1))
        }
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
    let (mut chunk, mut out) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let result = validate_then_apply(py, book, buf, &flat, rows, &mut chunk, &mut out);
    trim(&mut chunk);
    trim(&mut out);
    SCRATCH.with(|s| *s.borrow_mut() = (chunk, out));
    result
}

fn validate_then_apply<'py>(
    py: Python<'py>,
    book: &mut Book,
    buf: &mut Vec<Event>,
    flat: &Bound<'py, PyAny>,
    rows: usize,
    chunk: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> PyResult<Outcome<'py>> {
    // Pass 1: a batch of one chunk is validated and applied from a single copy; a longer one
    // is validated whole first (all or nothing), then copied again chunk by chunk to apply.
    let single = rows <= CHUNK_ROWS;
    for first in (0..rows).step_by(CHUNK_ROWS) {
        let n = CHUNK_ROWS.min(rows - first);
        let len = copy_rows(py, flat, first, n, chunk)?;
        if let Some(i) = first_invalid(&chunk[..len]) {
            let bad = bad_row(&chunk[i * OP_ITEMSIZE..(i + 1) * OP_ITEMSIZE], first + i);
            return Ok(Outcome::Invalid(format!(
                "ops[{}].{} = {} is not a valid code (valid: {}); no operation was applied",
                bad.row, bad.field, bad.value, bad.valid
            )));
        }
    }
    let mut events = EventsOut::new(py, rows)?;
    for first in (0..rows).step_by(CHUNK_ROWS) {
        let n = CHUNK_ROWS.min(rows - first);
        if !single {
            copy_rows(py, flat, first, n, chunk)?;
        }
        let chunk = &chunk[..n * OP_ITEMSIZE];
        // Rows that changed into an invalid code since pass 1 stop the batch after the rows
        // before them.
        let good = if single {
            n
        } else {
            first_invalid(chunk).unwrap_or(n)
        };
        out.clear();
        out.reserve(n * EVENT_ITEMSIZE);
        let bytes = &chunk[..good * OP_ITEMSIZE];
        let step =
            py.detach(|| catch_unwind(AssertUnwindSafe(|| run(book, buf, bytes, first, out))));
        if let Err(payload) = step {
            return Ok(Outcome::Panicked(errors::panic_message(payload.as_ref())));
        }
        if good < n {
            let bad = bad_row(
                &chunk[good * OP_ITEMSIZE..(good + 1) * OP_ITEMSIZE],
                first + good,
            );
            return Ok(Outcome::Changed(format!(
                "ops[{}].{} = {} is not a valid code: the array was changed while being \
                 processed; rows 0..{} were applied",
                bad.row, bad.field, bad.value, bad.row
            )));
        }
        events.append(py, out)?;
    }
    Ok(Outcome::Done(events.finish(py)?))
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
        assert_eq!(first_invalid(&bytes), None);
        run(&mut book, &mut buf, &bytes, 0, &mut out);

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
        assert_eq!(first_invalid(&bytes), Some(1));
        let err = bad_row(&bytes[OP_ITEMSIZE..], 1);
        assert_eq!((err.row, err.field, err.value), (1, "tif", 3));
        // Row numbers continue across chunks: the bad row alone, as the chunk at row 70,000.
        assert_eq!(first_invalid(&bytes[OP_ITEMSIZE..]), Some(0));
        assert_eq!(bad_row(&bytes[OP_ITEMSIZE..], 70_000).row, 70_000);
        // decode_valid gives what decode gives for a valid row.
        let good: &[u8; OP_ITEMSIZE] = bytes[..OP_ITEMSIZE].try_into().expect("one record");
        assert_eq!(
            format!("{:?}", decode_valid(good)),
            format!("{:?}", decode(good, 0).expect("valid"))
        );
    }
}
