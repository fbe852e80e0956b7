//! Opening an input file: plain text, or gzip or zstd read as it is.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{IndexError, Result};

/// Opens an input file for reading, decompressing gzip and zstd transparently (recognised by
/// their magic bytes, whatever the name; several members or frames one after another, as `cat`
/// makes them, are one stream). Other compressed or archive formats are refused by name rather
/// than read as garbage and reported row by row as invalid text.
pub(super) fn open(path: &Path) -> Result<Box<dyn Read>> {
    let fail = |reason: String| IndexError::Input { path: path.to_path_buf(), reason };
    let mut file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut magic = [0u8; 6];
    let seen = read_head(&mut file, &mut magic).map_err(|e| fail(format!("cannot read: {e}")))?;
    let head = &magic[..seen];
    let refused = [
        (&b"BZh"[..], "bzip2-compressed (decompress it first: bunzip2)"),
        (&b"\xfd7zXZ\x00"[..], "xz-compressed (decompress it first: unxz)"),
        (&b"PK\x03\x04"[..], "a zip archive (extract the file first)"),
    ];
    // bzip2's "BZh" is followed by the block size, a digit 1–9 (so a text header starting
    // "BZh" is not taken for it).
    let block_size = head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d));
    if let Some((_, what)) = refused.iter().find(|(m, _)| head.starts_with(m) && (*m != b"BZh" || block_size)) {
        return Err(fail(format!("the file is {what}; hyrank reads plain text, gzip or zstd")));
    }
    // The sniffed bytes are put back in front rather than seeking: a pipe (`<(zcat …)`)
    // cannot seek.
    let gzip = head.starts_with(b"\x1f\x8b");
    // A zstd frame, or a skippable frame (magic 0x184D2A5?) that some zstd files start with.
    let zstd = head.starts_with(b"\x28\xb5\x2f\xfd")
        || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == *b"\x2a\x4d\x18");
    let input = std::io::Cursor::new(head.to_vec()).chain(file);
    let text: Box<dyn Read> = if gzip {
        // Multi-member: `cat a.gz b.gz` is a valid gzip file of both.
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(input)))
    } else if zstd {
        Box::new(ZstdFrames {
            source: BufReader::new(Box::new(input) as Box<dyn Read>),
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        })
    } else {
        Box::new(input)
    };
    // The text's own first bytes (after decompression) say whether it is UTF-8 at all.
    let mut text = text;
    let mut first = [0u8; 4];
    let seen = read_head(&mut text, &mut first).map_err(|e| fail(format!("read failed at line 1: {e}")))?;
    if let Some(refusal) = wide_encoding_refusal(&first[..seen], gzip || zstd) {
        return Err(fail(refusal));
    }
    Ok(Box::new(std::io::Cursor::new(first[..seen].to_vec()).chain(text)))
}

/// Fills `buf` from `reader`, or as much of it as the input holds: one read may bring fewer
/// bytes than there are (a pipe, a tiny first gzip member or zstd frame). Returns the count.
fn read_head(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut seen = 0;
    while seen < buf.len() {
        match reader.read(&mut buf[seen..]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(seen)
}

/// Why text that starts with `head` cannot be read, when it is UTF-16 or UTF-32 rather than
/// UTF-8, with the conversion that fixes it: found by its byte-order mark, or (without one)
/// by the zero bytes that ASCII characters have in those encodings, which UTF-8 text never
/// holds. Read as UTF-8 such a file would be refused line by line as invalid text, or as a CSV
/// header of columns that are not there. Text starting with characters that have no zero
/// byte there (CJK in UTF-16 without a mark) is not recognised and reads as invalid UTF-8.
pub(crate) fn wide_encoding_refusal(head: &[u8], compressed: bool) -> Option<String> {
    // The name iconv reads: with a mark it finds the byte order itself; without one
    // "UTF-16" means big-endian there, so the order is named.
    let (encoding, iconv) = match head {
        [0xFF, 0xFE, 0, 0, ..] => ("UTF-32 (little-endian, with a byte-order mark)", "UTF-32"),
        [0, 0, 0xFE, 0xFF, ..] => ("UTF-32 (big-endian, with a byte-order mark)", "UTF-32"),
        [0xFF, 0xFE, ..] => ("UTF-16 (little-endian, with a byte-order mark)", "UTF-16"),
        [0xFE, 0xFF, ..] => ("UTF-16 (big-endian, with a byte-order mark)", "UTF-16"),
        [a, 0, 0, 0, ..] if *a != 0 => ("UTF-32 (little-endian)", "UTF-32LE"),
        [0, 0, 0, a, ..] if *a != 0 => ("UTF-32 (big-endian)", "UTF-32BE"),
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => ("UTF-16 (little-endian)", "UTF-16LE"),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => ("UTF-16 (big-endian)", "UTF-16BE"),
        _ => return None,
    };
    let step = if compressed { "decompress it, then convert it" } else { "convert it first" };
    Some(format!("the file is {encoding}; hyrank reads UTF-8, so {step} (iconv -f {iconv} -t UTF-8)"))
}

/// zstd frames one after another, read as one stream: data frames decoded (their checksums
/// checked when they carry one), skippable frames (pzstd's, a seekable file's table) skipped.
struct ZstdFrames {
    source: BufReader<Box<dyn Read>>,
    decoder: ruzstd::decoding::FrameDecoder,
    /// Whether a data frame is being decoded.
    in_frame: bool,
}

fn zstd_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl ZstdFrames {
    /// Starts the next data frame, skipping skippable ones; `false` at the end of the input.
    fn next_frame(&mut self) -> std::io::Result<bool> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use std::io::BufRead;
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame { length, .. })) => {
                    let skipped = std::io::copy(&mut (&mut self.source).take(u64::from(length)), &mut std::io::sink())?;
                    if skipped != u64::from(length) {
                        return Err(zstd_error("a skippable frame ends early"));
                    }
                }
                Err(e) => return Err(zstd_error(e)),
            }
        }
    }
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() < buf.len() && !self.decoder.is_finished() {
                let wanted = buf.len() - self.decoder.can_collect();
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBytes(wanted))
                    .map_err(zstd_error)?;
            }
            let read = self.decoder.read(buf).map_err(zstd_error)?;
            if read > 0 {
                return Ok(read);
            }
            // The frame is decoded and drained: check it, then go on to the next one.
            if let (Some(stored), Some(computed)) =
                (self.decoder.get_checksum_from_data(), self.decoder.get_calculated_checksum())
            {
                if stored != computed {
                    return Err(zstd_error(format!(
                        "checksum mismatch ({stored:08x} stored, {computed:08x} computed)"
                    )));
                }
            }
            self.in_frame = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::super::testing::file;
    use crate::input::{read_catalog, CatalogFormat};

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(content).unwrap();
        encoder.finish().unwrap()
    }

    /// zstd is read transparently too, frames one after another included; a broken stream is
    /// an error naming the file, not rows of garbage.
    #[test]
    fn zstd_catalogs_are_read_whole() {
        use ruzstd::encoding::{compress_to_vec, CompressionLevel};
        let dir = tempfile::tempdir().unwrap();
        let lines: String = (0..2000).map(|i| format!("{{\"id\": \"i{i}\", \"title\": \"Tent {i}\"}}\n")).collect();
        let (first, second) = lines.split_at(lines.len() / 2);
        let mut frames = compress_to_vec(first.as_bytes(), CompressionLevel::Fastest);
        frames.extend(compress_to_vec(second.as_bytes(), CompressionLevel::Fastest));
        // Skippable frames (what pzstd and the seekable format add) before, between and after.
        let skippable = |payload: &[u8]| {
            let mut frame = vec![0x5e, 0x2a, 0x4d, 0x18];
            frame.extend((payload.len() as u32).to_le_bytes());
            frame.extend(payload);
            frame
        };
        let second_frame = frames.split_off(compress_to_vec(first.as_bytes(), CompressionLevel::Fastest).len());
        let frames: Vec<u8> = [skippable(b"table"), frames, skippable(b""), second_frame, skippable(b"end")].concat();
        let path = file(&dir, "items.jsonl.zst", &frames);
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert!(catalog.rejects.is_empty(), "{:?}", &catalog.rejects[..1]);
        assert_eq!((catalog.items.len(), catalog.items[1999].title.as_str()), (2000, "Tent 1999"));
        let path =
            file(&dir, "events.csv.zst", &compress_to_vec(&b"id,title\na,Tent\n"[..], CompressionLevel::Fastest));
        assert_eq!(read_catalog(&path, &CatalogFormat::default()).unwrap().items.len(), 1, "by content, CSV by name");
        let broken = file(&dir, "broken.jsonl.zst", b"\x28\xb5\x2f\xfd\x00\x00");
        let error = read_catalog(&broken, &CatalogFormat::default()).unwrap_err().to_string();
        assert!(error.contains("broken.jsonl.zst") && error.contains("zstd"), "{error}");
        // A CSV whose compressed stream breaks after its first rows is an error for the file,
        // not one malformed row and the rest dropped.
        let rows: String =
            std::iter::once("id,title\n".to_string()).chain((0..40_000).map(|i| format!("i{i},Tent {i}\n"))).collect();
        let mut stream = compress_to_vec(rows.as_bytes(), CompressionLevel::Fastest);
        let cut = stream.len() * 3 / 4;
        stream.truncate(cut);
        let path = file(&dir, "cut.csv.zst", &stream);
        let error = read_catalog(&path, &CatalogFormat::default()).unwrap_err().to_string();
        assert!(error.contains("cut.csv.zst") && error.contains("read failed"), "{error}");
        // At the line of the row being read (it said "line 0": an I/O error has no position).
        let line: u64 =
            error.split("read failed at line ").nth(1).and_then(|r| r.split(':').next()).unwrap().parse().unwrap();
        assert!((1_000..=40_001).contains(&line), "{error}");
    }

    /// gzip is read transparently (JSONL and CSV, `.csv.gz` taken as CSV); other compressed
    /// formats are refused by name, not reported line by line as invalid UTF-8.
    #[test]
    fn gzip_catalogs_are_read_and_other_compression_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = gzip(b"{\"id\": \"a\", \"title\": \"Tent\"}\n{\"id\": \"b\", \"title\": \"Mug\"}\n");
        let path = file(&dir, "items.jsonl.gz", &jsonl);
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert!(catalog.rejects.is_empty(), "{:?}", catalog.rejects);
        assert_eq!(catalog.items.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(), ["Tent", "Mug"]);
        let path = file(&dir, "items.CSV.gz", &gzip(b"id,title,text\na,Tent,light\n"));
        let catalog = read_catalog(&path, &CatalogFormat::default()).unwrap();
        assert_eq!((catalog.items.len(), catalog.items[0].text.as_str()), (1, "light"));
        for (name, bytes, what) in
            [("items.jsonl.bz2", &b"BZh91AY"[..], "bzip2"), ("items.zip", &b"PK\x03\x04\x14\x00"[..], "zip")]
        {
            let path = file(&dir, name, bytes);
            let err = read_catalog(&path, &CatalogFormat::default()).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(what), "{err}");
        }
        // Only the magic bytes name a format: a fourth byte that is a digit did (a header
        // `col1,col2` and MovieLens 1M's `1::1193::5::…` were refused as bzip2); text that
        // merely starts like a magic number is text.
        for head in ["1::1193::5::978300760\n", "col1,col2\n", "1234,5\n", "BZh,title\n", "BZhx\n", "PK,title\n"] {
            let path = file(&dir, "ratings.csv", head.as_bytes());
            let err =
                read_catalog(&path, &CatalogFormat::default()).map(|_| String::new()).unwrap_or_else(|e| e.to_string());
            assert!(!err.contains("compressed") && !err.contains("archive"), "{head:?}: {err}");
        }
    }
    /// UTF-16 and UTF-32 files (what some spreadsheet exports write) are refused for the file,
    /// naming the encoding, rather than row by row as invalid UTF-8; compressed ones too.
    #[test]
    fn wide_encodings_are_named_for_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let utf16 = |big: bool, bom: bool| -> Vec<u8> {
            let units = (if bom { "\u{feff}" } else { "" }).to_string() + "id,title\na,Tent\n";
            units.encode_utf16().flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() }).collect()
        };
        let utf32le: Vec<u8> = "\u{feff}id,title\n".chars().flat_map(|c| u32::from(c).to_le_bytes()).collect();
        let utf32be: Vec<u8> = "id,title\n".chars().flat_map(|c| u32::from(c).to_be_bytes()).collect();
        // A gzip stream whose first member holds one byte: the check reads past it.
        let mut split = gzip(&utf16(false, false)[..1]);
        split.extend(gzip(&utf16(false, false)[1..]));
        let zstd =
            ruzstd::encoding::compress_to_vec(&utf16(true, false)[..], ruzstd::encoding::CompressionLevel::Fastest);
        for (name, bytes, what, iconv) in [
            ("le-bom.csv", utf16(false, true), "UTF-16 (little-endian, with a byte-order mark)", "UTF-16"),
            ("be-bom.csv", utf16(true, true), "UTF-16 (big-endian, with a byte-order mark)", "UTF-16"),
            ("le.csv", utf16(false, false), "UTF-16 (little-endian)", "UTF-16LE"),
            ("be.jsonl", utf16(true, false), "UTF-16 (big-endian)", "UTF-16BE"),
            ("le.csv.gz", gzip(&utf16(false, true)), "UTF-16 (little-endian, with a byte-order mark)", "UTF-16"),
            ("split.csv.gz", split, "UTF-16 (little-endian)", "UTF-16LE"),
            ("be.csv.zst", zstd, "UTF-16 (big-endian)", "UTF-16BE"),
            ("wide.csv", utf32le, "UTF-32 (little-endian, with a byte-order mark)", "UTF-32"),
            ("wide-be.csv", utf32be, "UTF-32 (big-endian)", "UTF-32BE"),
        ] {
            let path = file(&dir, name, &bytes);
            let err = read_catalog(&path, &CatalogFormat::default()).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains(&format!("the file is {what};")), "{err}");
            assert!(err.contains(&format!("(iconv -f {iconv} -t UTF-8)")), "{err}");
            assert_eq!(err.contains("decompress it, then"), name.ends_with(".gz") || name.ends_with(".zst"), "{err}");
        }
        // UTF-8, with or without its mark, starting with non-ASCII, and a file too short to
        // tell are read.
        for (name, bytes) in [
            ("mark.csv", &b"\xef\xbb\xbfid,title\na,T\n"[..]),
            ("short.jsonl", &b"\n"[..]),
            ("cjk.csv", "名前,id,title\n帐篷,a,Tent\n".as_bytes()),
        ] {
            let path = file(&dir, name, bytes);
            assert!(read_catalog(&path, &CatalogFormat::default()).is_ok(), "{name}");
        }
    }

    /// A pipe (what `--catalog <(zcat items.jsonl.gz)` passes) cannot seek; it is read too.
    #[cfg(unix)]
    #[test]
    fn a_catalog_from_a_pipe_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("catalog.jsonl");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "{\"id\": \"a\", \"title\": \"Tent\"}\n").unwrap())
        };
        let catalog = read_catalog(&fifo, &CatalogFormat::default()).unwrap();
        writer.join().unwrap();
        assert_eq!((catalog.items.len(), catalog.rejects.len()), (1, 0));
    }
}
