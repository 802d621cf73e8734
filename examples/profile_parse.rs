use bytes::Bytes;
use vocals::sip::message::{Limits, Message};
fn main() {
    let buf = Bytes::copy_from_slice(include_bytes!("../sip-tests/vectors/twilio/twilio-invite-udp.sip"));
    drop(buf.clone());
    let limits = Limits::default();
    let mut n = 0;
    for _ in 0..20000 {
        n += Message::parse_datagram(std::hint::black_box(buf.clone()), &limits).unwrap().headers().len();
    }
    println!("{n}");
}
