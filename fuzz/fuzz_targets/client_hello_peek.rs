//! Feeds arbitrary first flights to the ClientHello reader that decides
//! every CONNECT no adapter claims by name (`leash::proxy::tunnel::peek`),
//! and arbitrary text to the `passthrough` host-pattern and network parsers.
//!
//! Checks: never panics; a hello it accepts is a prefix of what was sent
//! (the bytes replayed are the bytes read), at most 64 KiB plus one read,
//! with a lower-case SNI; a pattern that parses matches its own name.
#![no_main]

use leash::egress::{DeniedNetworks, HostPattern};
use leash::proxy::tunnel::{peek, MAX_CLIENT_HELLO};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut input = data;
    let peeked = runtime.block_on(peek(&mut input, std::time::Duration::from_secs(5)));
    if let Ok(Ok(hello)) = peeked {
        assert!(data.starts_with(&hello.bytes));
        assert!(hello.bytes.len() <= MAX_CLIENT_HELLO + 4096);
        if let Some(name) = &hello.server_name {
            assert_eq!(name, &name.to_ascii_lowercase());
        }
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(pattern) = text.parse::<HostPattern>() {
            if let HostPattern::Exact(name) = &pattern {
                assert!(pattern.matches(name));
            }
            let _ = pattern.to_string().parse::<HostPattern>().expect("display re-parses");
        }
        if let Ok(nets) = DeniedNetworks::from_entries(text.split(',')) {
            let _ = nets.denies(std::net::IpAddr::from([127, 0, 0, 1]));
        }
    }
});
