//! `tracing` events on slow paths.

use super::*;

#[test]
fn slow_path_work_emits_debug_events() {
    use std::io::Write;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let pool = pool::<Order>(manual("traced", 4, 4).max_live(Some(1)));
        let g = pool.try_acquire().unwrap();
        assert!(pool.try_acquire().is_err());
        drop(g);
        pool.reclaim();
    });
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("max_live cap"), "{log}");
    assert!(log.contains("reclaim pass"), "{log}");
    assert!(log.contains("traced"), "{log}");
}
