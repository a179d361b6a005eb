//! `fault::RefusedPort`: connections are refused for as long as it lives,
//! and nobody else can bind its port meanwhile.

use inferlink_testkit::fault::RefusedPort;
use std::io::ErrorKind;

#[test]
fn connections_are_refused_and_the_port_stays_reserved() {
    let port = RefusedPort::new().unwrap();
    for _ in 0..3 {
        let e = std::net::TcpStream::connect(port.addr()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    }
    let e = std::net::TcpListener::bind(port.addr()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
}
