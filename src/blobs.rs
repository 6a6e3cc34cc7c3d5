//! The blob store: content-addressed files under the home, laid out as
//! the JavaScript `multiblob` store lays them out
//! (`blobs/sha256/<first 2 hex>/<other 62 hex>`).
//!
//! Owns writing and reading blobs. A blob is written to a temporary file
//! in `blobs/tmp`, hashed while it streams, synced, and renamed into place
//! only when its sha256 is the id expected (and its size within the
//! limit): a blob that exists is whole and is what its id says, and a
//! crash leaves at most a temporary file, removed when the store is next
//! opened. Knows nothing of peers or messages; imports `crypto` only.
//!
//! The store also keeps which blobs are ours (added here: a marker file
//! in `blobs/ours`) and when each was last used (its file's modification
//! time, set when it is written or shown), so that [`Blobs::evict_to`] can
//! bring it within a budget by removing the least recently used blobs
//! that are not ours.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::crypto::{BlobId, Sha256Stream};

/// The largest blob taken by default (as `ssb-blobs`): 5 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 5 * 1024 * 1024;

/// Why a blob was not stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// More bytes than the limit.
    #[error("the blob is over {max} bytes (max_blob_bytes)")]
    TooBig {
        /// The limit.
        max: u64,
    },
    /// The bytes are not the blob asked for.
    #[error("the bytes received hash to {got}, not {want}")]
    Mismatch {
        /// The id asked for.
        want: BlobId,
        /// What they hash to.
        got: BlobId,
    },
    /// We do not hold it.
    #[error("no blob {0} here")]
    Missing(BlobId),
    /// A slice outside the blob.
    #[error("slice {start}..{end} is outside the blob of {size} bytes")]
    OutOfRange {
        /// Start asked.
        start: u64,
        /// End asked.
        end: u64,
        /// The blob's size.
        size: u64,
    },
    /// The filesystem.
    #[error("blob store: {0}")]
    Io(#[from] io::Error),
}

/// The blob store of a home.
#[derive(Debug)]
pub struct Blobs {
    dir: PathBuf,
    max: u64,
    next_tmp: AtomicU64,
}

impl Blobs {
    /// Opens (making it if needed) the store in `dir`, taking blobs of at
    /// most `max` bytes; removes what an interrupted write left.
    pub fn open(dir: &Path, max: u64) -> Result<Blobs, BlobError> {
        let tmp = dir.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(dir.join("sha256"))?;
        fs::create_dir_all(dir.join("ours"))?;
        Ok(Blobs {
            dir: dir.to_path_buf(),
            max,
            next_tmp: AtomicU64::new(0),
        })
    }

    /// The largest blob taken.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Where blob `id` lives (whether or not we hold it).
    pub fn path(&self, id: &BlobId) -> PathBuf {
        let hex = hex::encode(id.0);
        self.dir.join("sha256").join(&hex[..2]).join(&hex[2..])
    }

    /// The size of blob `id`, when we hold it.
    pub fn size(&self, id: &BlobId) -> Option<u64> {
        fs::metadata(self.path(id)).ok().map(|m| m.len())
    }

    /// Starts writing a blob: `expected` is the id it must have (none:
    /// whatever it hashes to, for a blob of ours).
    pub fn writer(&self, expected: Option<BlobId>) -> Result<BlobWriter<'_>, BlobError> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()));
        let file = File::create(&tmp)?;
        Ok(BlobWriter {
            blobs: self,
            file: Some(file),
            tmp,
            hash: Sha256Stream::default(),
            size: 0,
            expected,
        })
    }

    /// Adds the bytes `reader` gives as a blob of ours (never evicted).
    pub fn add(&self, reader: &mut impl Read) -> Result<(BlobId, u64), BlobError> {
        let mut w = self.writer(None)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n])?;
        }
        let (id, size) = w.finish()?;
        File::create(self.dir.join("ours").join(hex::encode(id.0)))?;
        Ok((id, size))
    }

    /// Whether blob `id` is ours (added here).
    pub fn is_ours(&self, id: &BlobId) -> bool {
        self.dir.join("ours").join(hex::encode(id.0)).exists()
    }

    /// Blob `id` was used (shown, read): the last to be evicted.
    pub fn touch(&self, id: &BlobId) {
        if let Ok(f) = File::options().append(true).open(self.path(id)) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    /// Removes the least recently used blobs that are not ours until the
    /// blobs held take at most `budget` bytes (or only ours are left):
    /// what it removed.
    pub fn evict_to(&self, budget: u64) -> Result<Vec<(BlobId, u64)>, BlobError> {
        let mut all = Vec::new();
        let mut total = 0u64;
        for (id, size) in self.list()? {
            total += size;
            if !self.is_ours(&id) {
                let used = fs::metadata(self.path(&id))
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                all.push((used, id, size));
            }
        }
        all.sort();
        let mut removed = Vec::new();
        for (_, id, size) in all {
            if total <= budget {
                break;
            }
            self.remove(&id)?;
            total -= size;
            removed.push((id, size));
        }
        Ok(removed)
    }

    /// Opens blob `id` for reading.
    pub fn open_blob(&self, id: &BlobId) -> Result<File, BlobError> {
        File::open(self.path(id)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => BlobError::Missing(*id),
            _ => BlobError::Io(e),
        })
    }

    /// Bytes `start..end` of blob `id` (`end` past the end: to the end).
    pub fn slice(&self, id: &BlobId, start: u64, end: u64) -> Result<Vec<u8>, BlobError> {
        let mut f = self.open_blob(id)?;
        let size = f.metadata()?.len();
        if start > end || start > size {
            return Err(BlobError::OutOfRange { start, end, size });
        }
        let end = end.min(size);
        f.seek(SeekFrom::Start(start))?;
        let mut out = vec![0u8; (end - start) as usize];
        f.read_exact(&mut out)?;
        Ok(out)
    }

    /// Every blob held, with its size, in id order.
    pub fn list(&self) -> Result<Vec<(BlobId, u64)>, BlobError> {
        let mut out = Vec::new();
        for prefix in fs::read_dir(self.dir.join("sha256"))? {
            let prefix = prefix?;
            let head = prefix.file_name().to_string_lossy().into_owned();
            if head.len() != 2 || !prefix.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(prefix.path())? {
                let entry = entry?;
                let rest = entry.file_name().to_string_lossy().into_owned();
                let Some(bytes) = hex::decode(format!("{head}{rest}"))
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                else {
                    continue;
                };
                out.push((BlobId(bytes), entry.metadata()?.len()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes blob `id` (nothing when we do not hold it).
    pub fn remove(&self, id: &BlobId) -> Result<(), BlobError> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// A blob being written: see [`Blobs::writer`]. Dropped unfinished, its
/// temporary file goes.
#[derive(Debug)]
pub struct BlobWriter<'a> {
    blobs: &'a Blobs,
    file: Option<File>,
    tmp: PathBuf,
    hash: Sha256Stream,
    size: u64,
    expected: Option<BlobId>,
}

impl BlobWriter<'_> {
    /// Writes the next bytes; refused past the store's limit.
    pub fn write(&mut self, piece: &[u8]) -> Result<(), BlobError> {
        self.size += piece.len() as u64;
        if self.size > self.blobs.max {
            return Err(BlobError::TooBig {
                max: self.blobs.max,
            });
        }
        self.hash.update(piece);
        self.file
            .as_mut()
            .expect("written before finished")
            .write_all(piece)?;
        Ok(())
    }

    /// Checks the hash and puts the blob in place: its id and size.
    pub fn finish(mut self) -> Result<(BlobId, u64), BlobError> {
        let id = std::mem::take(&mut self.hash).finish();
        if let Some(want) = self.expected
            && want != id
        {
            return Err(BlobError::Mismatch { want, got: id });
        }
        let file = self.file.take().expect("finished once");
        file.sync_data()?;
        drop(file);
        let path = self.blobs.path(&id);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(&self.tmp, &path)?;
        Ok((id, self.size))
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: u64) -> (tempfile::TempDir, Blobs) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(&dir.path().join("blobs"), max).unwrap();
        (dir, blobs)
    }

    #[test]
    fn a_blob_is_stored_where_multiblob_puts_it_and_read_back() {
        let (_d, blobs) = store(DEFAULT_MAX_BLOB_BYTES);
        let (id, size) = blobs.add(&mut &b"hello"[..]).unwrap();
        // sha256("hello"), as ssb-blobs names it.
        assert_eq!(
            id.to_string(),
            "&LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=.sha256"
        );
        assert_eq!(size, 5);
        let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(
            blobs
                .path(&id)
                .ends_with(format!("sha256/{}/{}", &hex[..2], &hex[2..]))
        );
        assert_eq!(blobs.size(&id), Some(5));
        assert_eq!(blobs.slice(&id, 1, 3).unwrap(), b"el");
        assert_eq!(blobs.slice(&id, 2, 100).unwrap(), b"llo");
        assert!(matches!(
            blobs.slice(&id, 6, 7),
            Err(BlobError::OutOfRange { .. })
        ));
        assert_eq!(blobs.list().unwrap(), [(id, 5)]);
        blobs.remove(&id).unwrap();
        assert_eq!(blobs.size(&id), None);
        assert!(matches!(blobs.open_blob(&id), Err(BlobError::Missing(_))));
    }

    #[test]
    fn a_wrong_or_oversized_blob_leaves_nothing() {
        let (_d, blobs) = store(16);
        let want = BlobId::of(b"the real one");
        let mut w = blobs.writer(Some(want)).unwrap();
        w.write(b"forged").unwrap();
        assert!(matches!(w.finish(), Err(BlobError::Mismatch { .. })));
        let mut w = blobs.writer(None).unwrap();
        w.write(b"0123456789abcdef").unwrap();
        assert!(matches!(w.write(b"x"), Err(BlobError::TooBig { max: 16 })));
        drop(w);
        // Dropped half-written: nothing half-written anywhere.
        let mut w = blobs.writer(Some(want)).unwrap();
        w.write(b"the real").unwrap();
        drop(w);
        assert!(blobs.list().unwrap().is_empty());
        let tmp: Vec<_> = fs::read_dir(blobs.dir.join("tmp")).unwrap().collect();
        assert!(tmp.is_empty(), "{tmp:?}");
        // And the right bytes make it.
        let mut w = blobs.writer(Some(want)).unwrap();
        w.write(b"the real one").unwrap();
        assert_eq!(w.finish().unwrap(), (want, 12));
    }

    #[test]
    fn eviction_takes_the_least_recently_used_and_never_ours() {
        let (_d, blobs) = store(1000);
        let ours = blobs.add(&mut &[1u8; 100][..]).unwrap().0;
        let mut theirs = Vec::new();
        for i in 0..4u8 {
            let bytes = [i + 10; 100];
            let mut w = blobs.writer(Some(BlobId::of(&bytes))).unwrap();
            w.write(&bytes).unwrap();
            theirs.push(w.finish().unwrap().0);
            // Modification times a second apart, oldest first.
            let at =
                std::time::SystemTime::now() - std::time::Duration::from_secs(100 - u64::from(i));
            File::options()
                .append(true)
                .open(blobs.path(&theirs[i as usize]))
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
        assert!(blobs.is_ours(&ours) && !blobs.is_ours(&theirs[0]));
        // The oldest is shown again: the second oldest goes first.
        blobs.touch(&theirs[0]);
        let removed: Vec<BlobId> = blobs
            .evict_to(300)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(removed, [theirs[1], theirs[2]]);
        // However small the budget, ours stays.
        blobs.evict_to(0).unwrap();
        assert_eq!(blobs.list().unwrap(), [(ours, 100)]);
    }

    #[test]
    fn leftovers_of_an_interrupted_write_go_when_the_store_opens() {
        let (d, blobs) = store(100);
        let w = blobs.writer(None).unwrap();
        std::mem::forget(w);
        assert_eq!(fs::read_dir(blobs.dir.join("tmp")).unwrap().count(), 1);
        let again = Blobs::open(&d.path().join("blobs"), 100).unwrap();
        assert_eq!(fs::read_dir(again.dir.join("tmp")).unwrap().count(), 0);
    }
}
