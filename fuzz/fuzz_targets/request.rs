//! Arbitrary bytes as an HTTP/1.1 connection to an in-process hookscope: the
//! answer is never a 5xx, and the server goes on serving.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Target {
    runtime: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    _handle: hookscope::Handle,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let handle = runtime
            .block_on(hookscope::Server::builder().keep(16).spawn())
            .expect("hookscope starts");
        Target {
            addr: handle.local_addr(),
            runtime,
            _handle: handle,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let target = target();
    let answer = target.runtime.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(target.addr)
            .await
            .expect("connects");
        let _ = stream.write_all(data).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
        assert!(read.await.is_ok(), "no answer and no close within 5 s");
        answer
    });
    assert!(
        !answer.starts_with(b"HTTP/1.1 5"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
});
