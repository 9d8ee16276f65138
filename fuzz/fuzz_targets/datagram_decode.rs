//! Fuzz target: `codec::decode_datagram` (the UDP feed) on arbitrary bytes.
//!
//! Properties: no panic; an accepted datagram yields exactly `count` feed messages with
//! consecutive sequence numbers from the header's, and writing those messages again with
//! `DatagramWriter` on the same channel and first seq reproduces the datagram byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tradecore_engine::codec::{decode_datagram, DatagramWriter, Direction, MAX_DATAGRAM_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(d) = decode_datagram(data) else {
        return;
    };
    let h = d.header;
    let mut buf = [0u8; MAX_DATAGRAM_LEN];
    let mut w = DatagramWriter::new(&mut buf, h.channel, h.seq).expect("writer");
    let mut n = 0u64;
    for (seq, m) in d.iter() {
        assert_eq!(seq, h.seq.wrapping_add(n));
        assert_eq!(m.msg_type().direction(), Direction::Feed);
        assert_eq!(w.push(&m).expect("the messages fit again"), seq);
        n += 1;
    }
    assert_eq!(n, u64::from(h.count));
    let len = w.finish();
    assert_eq!(&buf[..len], data, "re-written datagram differs");
});
