//! Reading a client's command lines and message data while holding a bounded amount of either:
//! a line is read in pieces of at most a given size, so a client that never sends a line end
//! costs one piece of memory, not all it sends.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// Where one piece ended.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// At a line end (LF), which the piece includes.
    LineEnd,
    /// At the size limit, inside a line.
    Cut,
    /// Where the client closed the connection.
    Closed,
}

/// Appends to `out` the bytes up to and including the next LF, at most `max` (> 0) of them.
async fn read_piece<R>(reader: &mut R, max: usize, out: &mut Vec<u8>) -> io::Result<Piece>
where
    R: AsyncBufRead + Unpin,
{
    let mut taken = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Piece::Closed);
        }
        let window = &available[..available.len().min(max - taken)];
        if let Some(end) = window.iter().position(|&byte| byte == b'\n') {
            out.extend_from_slice(&window[..=end]);
            reader.consume(end + 1);
            return Ok(Piece::LineEnd);
        }
        let length = window.len();
        out.extend_from_slice(window);
        reader.consume(length);
        taken += length;
        if taken == max {
            return Ok(Piece::Cut);
        }
    }
}

/// One command line, as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CommandLine {
    /// The line without its line end (CRLF or bare LF).
    Line(Vec<u8>),
    /// A line longer than the limit, read to its end and dropped.
    TooLong,
    /// The client closed the connection.
    Closed,
}

/// Reads the next command line of at most `max` bytes, its line end included.
pub(super) async fn read_command<R>(reader: &mut R, max: usize) -> io::Result<CommandLine>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    match read_piece(reader, max, &mut line).await? {
        Piece::LineEnd => {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Ok(CommandLine::Line(line))
        }
        Piece::Closed => Ok(CommandLine::Closed),
        Piece::Cut => loop {
            line.clear();
            match read_piece(reader, max, &mut line).await? {
                Piece::LineEnd => return Ok(CommandLine::TooLong),
                Piece::Closed => return Ok(CommandLine::Closed),
                Piece::Cut => {}
            }
        },
    }
}

/// The size of the pieces message data is read in; the lines of a message have no limit.
const DATA_PIECE_BYTES: usize = 8192;

/// Where a read of message data left off.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DataStep {
    /// More data follows.
    More,
    /// The line `.` ended the data.
    End,
    /// The client closed the connection first.
    Closed,
}

/// The data of one message after `DATA`: dot-unstuffed (RFC 5321 §4.5.2), line ends kept as
/// sent, and kept only while it fits in `max` bytes; past that the rest is read and dropped,
/// so that the client's commands that follow are read as commands.
#[derive(Debug)]
pub(super) struct MessageData {
    message: Vec<u8>,
    piece: Vec<u8>,
    max: usize,
    at_line_start: bool,
    too_big: bool,
}

impl MessageData {
    /// Data of at most `max` bytes.
    pub(super) fn new(max: usize) -> Self {
        Self {
            message: Vec::new(),
            piece: Vec::with_capacity(DATA_PIECE_BYTES),
            max,
            at_line_start: true,
            too_big: false,
        }
    }

    /// Reads one piece (at most one line) of the data.
    pub(super) async fn read_step<R>(&mut self, reader: &mut R) -> io::Result<DataStep>
    where
        R: AsyncBufRead + Unpin,
    {
        self.piece.clear();
        let piece = read_piece(reader, DATA_PIECE_BYTES, &mut self.piece).await?;
        if piece == Piece::Closed {
            return Ok(DataStep::Closed);
        }
        let line_start = std::mem::replace(&mut self.at_line_start, piece == Piece::LineEnd);
        if line_start && piece == Piece::LineEnd && matches!(&self.piece[..], b".\r\n" | b".\n") {
            return Ok(DataStep::End);
        }
        let stuffed = line_start && self.piece.first() == Some(&b'.');
        let bytes = &self.piece[usize::from(stuffed)..];
        if !self.too_big {
            if self.message.len() + bytes.len() > self.max {
                self.too_big = true;
                self.message = Vec::new();
            } else {
                self.message.extend_from_slice(bytes);
            }
        }
        Ok(DataStep::More)
    }

    /// The message, or `None` when it was larger than the limit.
    pub(super) fn into_message(self) -> Option<Vec<u8>> {
        (!self.too_big).then_some(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::{CommandLine, DataStep, MessageData, read_command};
    use tokio::io::{AsyncReadExt as _, BufReader};

    async fn read_all_data(input: &[u8], max: usize) -> Option<Vec<u8>> {
        let mut reader = BufReader::new(input);
        let mut data = MessageData::new(max);
        while data.read_step(&mut reader).await.expect("in memory") == DataStep::More {}
        data.into_message()
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_read_to_its_end_and_dropped() {
        let endless = tokio::io::repeat(b'x').take(64 << 20);
        let mut reader = BufReader::new(endless.chain(&b"\r\nNOOP\r\nQUIT\n"[..]));

        assert_eq!(
            read_command(&mut reader, 4096).await.expect("in memory"),
            CommandLine::TooLong
        );
        assert_eq!(
            read_command(&mut reader, 4096).await.expect("in memory"),
            CommandLine::Line(b"NOOP".to_vec())
        );
        assert_eq!(
            read_command(&mut reader, 4096).await.expect("in memory"),
            CommandLine::Line(b"QUIT".to_vec())
        );
        assert_eq!(
            read_command(&mut reader, 4096).await.expect("in memory"),
            CommandLine::Closed
        );
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_a_line() {
        let line = [&[b'a'; 4094][..], b"\r\n"].concat();
        let mut reader = BufReader::new(&line[..]);

        let read = read_command(&mut reader, 4096).await.expect("in memory");

        assert_eq!(read, CommandLine::Line(vec![b'a'; 4094]));
    }

    #[tokio::test]
    async fn message_data_is_unstuffed_and_ends_at_a_lone_dot_with_crlf_or_lf() {
        let crlf = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nNOOP\r\n";
        let lf = b"Subject: x\n\n..leading dot\n. \n.\n";

        assert_eq!(
            read_all_data(crlf, 1000).await.expect("within the limit"),
            b"Subject: x\r\n\r\n.leading dot\r\n"
        );
        assert_eq!(
            read_all_data(lf, 1000).await.expect("within the limit"),
            b"Subject: x\n\n.leading dot\n \n"
        );
    }

    #[tokio::test]
    async fn a_dot_inside_a_long_line_does_not_end_the_data() {
        let long = [&[b'y'; 20_000][..], b".\r\n.\r\n"].concat();

        let message = read_all_data(&long, 100_000).await;

        assert_eq!(message.expect("within the limit").len(), 20_003);
    }

    #[tokio::test]
    async fn data_over_the_limit_is_read_to_its_end_and_dropped() {
        let line = [&[b'z'; 998][..], b"\r\n"].concat();
        let mut input = line.repeat(3000);
        input.extend_from_slice(b".\r\nNOOP\r\n");
        let mut reader = BufReader::new(&input[..]);
        let mut data = MessageData::new(100_000);

        while data.read_step(&mut reader).await.expect("in memory") == DataStep::More {
            // Growing by doubling, the buffer never holds more than twice the limit.
            assert!(data.message.capacity() <= 200_000);
        }

        assert_eq!(data.into_message(), None);
        assert_eq!(
            read_command(&mut reader, 4096).await.expect("in memory"),
            CommandLine::Line(b"NOOP".to_vec())
        );
    }

    #[tokio::test]
    async fn data_cut_off_by_a_closed_connection_is_no_message() {
        let mut reader = BufReader::new(&b"Subject: x\r\n\r\nbody"[..]);
        let mut data = MessageData::new(1000);

        let mut last = DataStep::More;
        while last == DataStep::More {
            last = data.read_step(&mut reader).await.expect("in memory");
        }

        assert_eq!(last, DataStep::Closed);
    }
}
