//! The node's web console and its federation port are two doors: the console speaks HTTP only
//! on its own port, the federation mutual TLS only on its own. Neither answers the other's
//! protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vrs_core::clock::SystemClock;
use vrs_core::tls;
use vrs_node::config::NodeConfig;
use vrs_node::console::{self, Console};
use vrs_tests::{NodeClient, TestFederation, client_config};

/// What a plain HTTP GET gets back from `addr` (empty when the connection is closed on it).
async fn plain_http_get(addr: SocketAddr) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // A TLS server may close before the request is all written.
    let _ = stream.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn the_console_and_the_federation_port_do_not_answer_each_other() {
    let fed = TestFederation::with_nodes(&[("IDN", 40, 7)]).await;
    let config = NodeConfig::load(&fed.node_dir("IDN")).unwrap();
    let console = Arc::new(Console::new(config, Arc::new(SystemClock)).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let console_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(console::serve(listener, console, async {
        let _ = stopped.await;
    }));
    let node_addr = fed.addr("IDN");
    assert_ne!(console_addr.port(), node_addr.port());

    // Each door answers its own protocol…
    let page = String::from_utf8(plain_http_get(console_addr).await).unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    fed.coordinator_client("IDN")
        .await
        .describe()
        .await
        .unwrap();

    // …and not the other's: no HTTP from the mutual-TLS port,
    let reply = plain_http_get(node_addr).await;
    assert!(
        !reply.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    // and no TLS, let alone the Federation service, from the console's.
    let coordinator = client_config(&fed.coordinator_tls());
    let dialled = NodeClient::connect(console_addr, &tls::node_identity("IDN"), coordinator).await;
    match dialled {
        Err(_) => {}
        Ok(client) => {
            assert!(
                client.describe().await.is_err(),
                "the console answered gRPC"
            );
        }
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    fed.stop().await;
}
