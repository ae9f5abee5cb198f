//! A `.zip` as Binance's historical data comes (one deflated CSV), read as a stream:
//! a thread of its own inflates the entry into a pipe, so the feed reads it like any
//! other input, and an error inside the archive ends the input as an error rather
//! than as a short file.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::thread::JoinHandle;

use anyhow::{Context as _, Result, bail};

/// The inflated entry of an archive, read from the pipe its thread writes.
pub(crate) struct ZipStream {
    pipe: std::io::PipeReader,
    /// The inflating thread, joined at the end of the pipe for its result.
    inflater: Option<JoinHandle<std::io::Result<u64>>>,
}

impl std::fmt::Debug for ZipStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipStream").finish_non_exhaustive()
    }
}

/// Opens the archive at `path`, checks that it holds one file, and starts inflating
/// it; returns the stream and the entry's name (`BTCUSDT-trades-2024-01-01.csv`).
///
/// # Errors
/// The archive cannot be opened or read, or holds other than one file.
pub(crate) fn open(path: &Path) -> Result<(ZipStream, String)> {
    let name = path.display().to_string();
    let file = File::open(path).with_context(|| format!("opening {name}"))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("reading {name} as a zip archive"))?;
    if archive.len() != 1 {
        bail!(
            "{name} holds {} files; a Binance historical archive holds one CSV",
            archive.len()
        );
    }
    let (entry, is_file, size) = {
        let file = archive
            .by_index(0)
            .with_context(|| format!("reading the file inside {name}"))?;
        let entry = file
            .name()
            .with_context(|| format!("reading the name of the file inside {name}"))?
            .into_owned();
        (entry, file.is_file(), file.size())
    };
    if !is_file || size == 0 {
        bail!("{name} holds no data: its one entry, {entry:?}, is not a file with content");
    }
    let (pipe, mut writer) = std::io::pipe().context("making a pipe for the archive")?;
    let inflater = std::thread::Builder::new()
        .name("unzip".into())
        .spawn(move || -> std::io::Result<u64> {
            let mut entry = archive.by_index(0).map_err(std::io::Error::other)?;
            // A reader gone (the run stopped) ends the copy with a broken pipe: no
            // error of the archive's.
            match std::io::copy(&mut entry, &mut writer) {
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
                other => other,
            }
        })
        .context("starting the unzip thread")?;
    Ok((
        ZipStream {
            pipe,
            inflater: Some(inflater),
        },
        entry,
    ))
}

impl Read for ZipStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // The end of the pipe: the archive's own verdict (a CRC mismatch, a
            // truncated file) comes with it.
            if let Some(inflater) = self.inflater.take() {
                match inflater.join() {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Err(error),
                    Err(_) => return Err(std::io::Error::other("the unzip thread panicked")),
                }
            }
        }
        Ok(n)
    }
}
