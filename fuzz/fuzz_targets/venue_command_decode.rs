//! Fuzz target: the venue's journal command encoding (`venue::Command::decode`, the payload of
//! every journal record) and venue snapshot bodies (`Venue::restore`) on arbitrary bytes.
//!
//! Properties: no panic; a decoded command re-encodes to exactly the input (same length, same
//! bytes) and decodes back to itself; applying it to a venue keeps the venue's invariants; a
//! restored snapshot (rare from random bytes, common from the seed corpus `run.sh` writes)
//! re-snapshots to the same bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tradecore_engine::config::{api_key_sha256, to_hex, Config};
use tradecore_engine::venue::{Command, Venue, MAX_COMMAND_LEN};

fn config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let text = format!(
            "[session]\nmax_sessions = 4\n\n[journal]\ndir = \"unused\"\n\n\
             [[instrument]]\nsymbol_id = 1\nsymbol = \"AAA\"\ntick_size = \"0.01\"\n\
             lot_size = \"1\"\nprice_band = {{ lo_ticks = 1, hi_ticks = 1000 }}\n\
             max_order_qty = 1000\nbook_capacity = 16\n\n\
             [[account]]\naccount = 1\napi_key_sha256 = \"{}\"\n",
            to_hex(&api_key_sha256("key-1"))
        );
        Config::from_toml_str(&text).expect("fuzz config")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = Command::decode(data) {
        let mut buf = [0u8; MAX_COMMAND_LEN];
        let n = cmd.encode_into(&mut buf).expect("encode");
        assert_eq!(&buf[..n], data, "re-encoded command differs");
        assert_eq!(Command::decode(&buf[..n]).expect("decode again"), cmd);
        let mut v = Venue::new(config()).expect("venue");
        let mut out = Vec::new();
        v.apply(&cmd, &mut out);
        v.check_invariants().expect("invariants after one command");
    }
    if let Ok(v) = Venue::restore(config(), data) {
        v.check_invariants()
            .expect("invariants of a restored venue");
        assert_eq!(
            v.snapshot(),
            data,
            "a restored snapshot re-encodes differently"
        );
    }
});
