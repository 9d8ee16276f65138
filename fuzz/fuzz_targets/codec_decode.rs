//! Fuzz target: the TCP frame decoders (`codec::decode`, `decode_from_client` for the venue's
//! side, `decode_from_venue` for the client's side) on arbitrary bytes.
//!
//! Properties: no panic; `Incomplete` asks for more bytes than were given and never more than
//! the largest frame; the direction-checking decoders agree with `decode` (same message, or
//! `WrongDirection` exactly when the direction differs); and every decoded message re-encodes
//! to exactly the bytes it was decoded from (the encoding is canonical), which decode back to
//! the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tradecore_engine::codec::{
    self, decode, decode_from_client, decode_from_venue, CodecError, Direction,
};

fuzz_target!(|data: &[u8]| {
    let whole = decode(data);
    match &whole {
        Ok((m, n)) => {
            let n = *n;
            assert!(n >= codec::HEADER_LEN && n <= data.len());
            assert_eq!(n, m.encoded_len());
            let mut buf = [0u8; codec::MAX_MESSAGE_LEN];
            let k = m.encode(&mut buf).expect("a decoded message encodes");
            assert_eq!(
                &buf[..k],
                &data[..n],
                "re-encoding differs from the input frame"
            );
            let (again, k2) = decode(&buf[..k]).expect("re-encoded frame decodes");
            assert_eq!((again, k2), (*m, n));
        }
        Err(CodecError::Incomplete { need, have }) => {
            assert_eq!(*have, data.len());
            assert!(*need > *have && *need <= codec::MAX_MESSAGE_LEN);
        }
        Err(_) => {}
    }
    for (dir, r) in [
        (Direction::ClientToVenue, decode_from_client(data)),
        (Direction::VenueToClient, decode_from_venue(data)),
    ] {
        match (&whole, r) {
            (Ok((m, n)), Ok((m2, n2))) => {
                assert_eq!((*m, *n), (m2, n2));
                let d = m.msg_type().direction();
                let ok = match dir {
                    Direction::ClientToVenue => d == Direction::ClientToVenue,
                    _ => d != Direction::ClientToVenue,
                };
                assert!(ok, "{dir:?} decoder accepted a {d:?} message");
            }
            (Ok((m, _)), Err(CodecError::WrongDirection { msg_type, .. })) => {
                assert_eq!(msg_type, m.msg_type() as u8);
            }
            (Ok(_), Err(e)) => panic!("decode accepted what the {dir:?} decoder refused: {e}"),
            (Err(e), Ok(_)) => panic!("the {dir:?} decoder accepted what decode refused: {e}"),
            (Err(_), Err(_)) => {}
        }
    }
});
