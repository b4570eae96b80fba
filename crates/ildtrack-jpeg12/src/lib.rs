//! 12-bit lossy JPEG for DICOM, as a dicom-rs codec.
//!
//! [`decode`] is our own ITU T.81 decoder (Huffman DCT: baseline / extended sequential and
//! progressive, 8- and 12-bit; see the `decoder` module). dicom-rs' JPEG adapter (jpeg-decoder)
//! refuses 12-bit DCT streams, which is what CT archives hold under JPEG Extended (…4.51).
//!
//! Registration: this crate submits a JPEG Extended transfer syntax to dicom-rs' inventory
//! registry (`dicom-transfer-syntax-registry` feature `inventory-registry`), so
//! `decode_pixel_data()` / `decode_pixel_data_frame()` of dicom-pixeldata reach [`Jpeg12Reader`]
//! for …4.51 without the caller naming this crate. The registry registers its built-in syntaxes
//! first and lets a later registration of the same UID replace one only when it brings a codec
//! the first lacks (`TransferSyntaxRegistryImpl::register`, dicom-transfer-syntax-registry 0.10.1
//! `src/lib.rs`): the built-in …4.51 has a decoder and no encoder, so ours carries both —
//! [`Jpeg12Reader`] (12-bit frames here, every other frame to the built-in decoder, so 8-bit
//! results stay jpeg-decoder's) and [`Jpeg12Writer`] (8-bit frames through the built-in baseline
//! encoder, a process-1 stream being a valid …4.51 stream; 12-bit encoding is refused). Two
//! inventory registrations of one UID would be resolved in link order, so nothing else in the
//! workspace registers …4.51.
//!
//! The registration lives in this crate's object code: a binary links it only when it uses
//! something from the crate, which is why the loader calls [`extended_reader`].

mod decoder;

pub use decoder::{Decoded, JpegError, decode, sof_info};

use dicom_core::ops::AttributeOp;
use dicom_dictionary_std::uids;
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::adapters::{
    DecodeError, DecodeResult, EncodeError, EncodeOptions, EncodeResult, PixelDataObject,
    PixelDataReader, PixelDataWriter,
};
use dicom_encoding::transfer_syntax::{Codec, NeverAdapter, TransferSyntax};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// Decoder for JPEG Extended (…4.51): 12-bit DCT frames decoded here, others by dicom-rs.
pub struct Jpeg12Reader {
    /// dicom-rs' own JPEG Extended entry, whose decoder handles the 8-bit frames.
    native: TransferSyntax,
}

/// Encoder for JPEG Extended (…4.51): 8-bit frames as baseline JPEG by dicom-rs' encoder.
pub struct Jpeg12Writer {
    /// dicom-rs' own JPEG Baseline entry, whose encoder writes the frames.
    native: TransferSyntax,
}

impl std::fmt::Debug for Jpeg12Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jpeg12Reader")
    }
}

impl std::fmt::Debug for Jpeg12Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jpeg12Writer")
    }
}

impl Default for Jpeg12Reader {
    fn default() -> Self {
        Self {
            native: dicom_transfer_syntax_registry::entries::JPEG_EXTENDED.erased(),
        }
    }
}

impl Default for Jpeg12Writer {
    fn default() -> Self {
        Self {
            native: dicom_transfer_syntax_registry::entries::JPEG_BASELINE.erased(),
        }
    }
}

fn custom(message: String) -> DecodeError {
    DecodeError::Custom {
        message,
        source: None,
    }
}

/// The codestream of frame `frame`: its own fragment when there is one fragment per frame, all
/// fragments for a single frame, else the fragments the basic offset table gives it.
fn frame_codestream(src: &dyn PixelDataObject, frame: u32) -> Option<Vec<u8>> {
    let n_frames = src.number_of_frames().unwrap_or(1);
    let n_frags = src.number_of_fragments()?;
    if n_frags == n_frames {
        return src.fragment(frame as usize).map(|f| f.into_owned());
    }
    let frags: Vec<Vec<u8>> = (0..n_frags as usize)
        .map(|i| src.fragment(i).map(|f| f.into_owned()))
        .collect::<Option<_>>()?;
    if n_frames == 1 {
        return Some(frags.concat());
    }
    let parts: Vec<&[u8]> = frags.iter().map(Vec::as_slice).collect();
    let bot = src
        .offset_table()
        .map(|t| t.into_owned())
        .unwrap_or_default();
    decoder::frame_by_offsets(&parts, &bot, frame)
}

/// A 12-bit Huffman DCT codestream (SOF0/1/2), the kind dicom-rs' decoder refuses.
fn is_12_bit_dct(code: &[u8]) -> bool {
    matches!(sof_info(code), Some((0xC0..=0xC2, 12)))
}

impl Jpeg12Reader {
    fn native(&self) -> DecodeResult<&(dyn PixelDataReader + Send + Sync)> {
        self.native
            .pixel_data_reader()
            .map(|r| r.as_ref())
            .ok_or_else(|| custom("dicom-rs has no JPEG decoder in this build".into()))
    }

    /// Frame `frame` when it is 12-bit DCT, decoded here; `None` for every other frame.
    fn decode_12_bit(
        &self,
        src: &dyn PixelDataObject,
        frame: u32,
        dst: &mut Vec<u8>,
    ) -> Option<DecodeResult<()>> {
        let code = frame_codestream(src, frame)?;
        if !is_12_bit_dct(&code) {
            return None;
        }
        let (Some(rows), Some(cols)) = (src.rows(), src.cols()) else {
            return Some(Err(DecodeError::MissingAttribute {
                name: "Rows/Columns",
            }));
        };
        let (rows, cols) = (u32::from(rows), u32::from(cols));
        Some(match decode(&code, cols, rows) {
            Ok(d)
                if d.width == cols
                    && d.height == rows
                    && d.components == 1
                    && d.precision == 12 =>
            {
                dst.reserve(d.samples.len() * 2);
                dst.extend(d.samples.iter().flat_map(|s| s.to_le_bytes()));
                Ok(())
            }
            Ok(d) => Err(custom(format!(
                "12-bit JPEG: frame {frame} is {}×{} with {} {}-bit component(s), the header says {cols}×{rows} 12-bit grayscale",
                d.width, d.height, d.components, d.precision
            ))),
            Err(e) => Err(custom(format!("frame {frame}: {e}"))),
        })
    }
}

impl PixelDataReader for Jpeg12Reader {
    fn decode(&self, src: &dyn PixelDataObject, dst: &mut Vec<u8>) -> DecodeResult<()> {
        // A 12-bit object goes frame by frame here; anything else keeps dicom-rs' own whole-object
        // decode (it also finds frames in fragmented data without an offset table).
        if frame_codestream(src, 0).is_some_and(|c| is_12_bit_dct(&c)) {
            for frame in 0..src.number_of_frames().unwrap_or(1) {
                self.decode_frame(src, frame, dst)?;
            }
            return Ok(());
        }
        self.native()?.decode(src, dst)
    }

    fn decode_frame(
        &self,
        src: &dyn PixelDataObject,
        frame: u32,
        dst: &mut Vec<u8>,
    ) -> DecodeResult<()> {
        match self.decode_12_bit(src, frame, dst) {
            Some(r) => r,
            None => self.native()?.decode_frame(src, frame, dst),
        }
    }
}

impl PixelDataWriter for Jpeg12Writer {
    fn encode_frame(
        &self,
        src: &dyn PixelDataObject,
        frame: u32,
        options: EncodeOptions,
        dst: &mut Vec<u8>,
    ) -> EncodeResult<Vec<AttributeOp>> {
        if src.bits_allocated() != Some(8) {
            return Err(EncodeError::Custom {
                message: "JPEG Extended: only 8-bit images can be encoded (as baseline JPEG)"
                    .into(),
                source: None,
            });
        }
        let Some(w) = self.native.pixel_data_writer() else {
            return Err(EncodeError::Custom {
                message: "dicom-rs has no JPEG encoder in this build".into(),
                source: None,
            });
        };
        w.encode_frame(src, frame, options, dst)
    }
}

/// The JPEG Extended (…4.51) transfer syntax with this crate's reader and writer.
pub fn jpeg_extended() -> TransferSyntax<NeverAdapter, Jpeg12Reader, Jpeg12Writer> {
    TransferSyntax::new_ele(
        uids::JPEG_EXTENDED12_BIT,
        "JPEG Extended (Process 2 & 4)",
        Codec::EncapsulatedPixelData(Some(Jpeg12Reader::default()), Some(Jpeg12Writer::default())),
    )
}

dicom_encoding::submit_transfer_syntax!(jpeg_extended());

/// The decoder the registry holds for JPEG Extended (…4.51): this crate's once its
/// registration took effect. Callers use it for streams labelled otherwise that are JPEG
/// Extended in fact (12-bit data under the baseline UID), and calling it links the registration.
pub fn extended_reader() -> Option<&'static (dyn PixelDataReader + Send + Sync)> {
    TransferSyntaxRegistry
        .get(uids::JPEG_EXTENDED12_BIT)
        .and_then(|ts| ts.pixel_data_reader())
        .map(|r| r.as_ref())
}

/// Whether the registry's JPEG Extended entry is this crate's (the built-in one has no encoder).
pub fn is_registered() -> bool {
    TransferSyntaxRegistry
        .get(uids::JPEG_EXTENDED12_BIT)
        .is_some_and(|ts| ts.pixel_data_writer().is_some())
}
