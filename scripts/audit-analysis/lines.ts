import { StringDecoder } from 'node:string_decoder';
import { parseAuditLine, RECORD_START, type AuditRecord } from './parser';

/**
 * Splits a stream of chunks into lines, holding at most one chunk and one partial line in memory.
 * UTF-8 characters cut between chunks are reassembled. A final line without a newline is yielded.
 */
export async function* splitLines(chunks: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of chunks) {
    const text = pending + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    let start = 0;
    let newline = text.indexOf('\n', start);
    while (newline >= 0) {
      yield text.slice(start, newline);
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    pending = text.slice(start);
  }
  pending += decoder.end();
  if (pending !== '') yield pending;
}

export type AuditLineEvent =
  | { kind: 'record'; record: AuditRecord; lineNumber: number }
  | { kind: 'unparseable'; reason: string; text: string; lineNumber: number };

/** A statement that really spans lines is rare; more than this means the quote was never closed. */
const MAX_CONTINUATION_LINES = 1000;
const MAX_RECORD_CHARS = 4 * 1024 * 1024;

/**
 * Parses lines into records. A writer that does not escape newlines inside the quoted statement
 * (server_audit does; this guards other writers) leaves a line whose quote is still open, followed by
 * lines that do not start with a timestamp: those are joined back into one record.
 */
export async function* parseAuditLines(lines: AsyncIterable<string>): AsyncGenerator<AuditLineEvent> {
  let lineNumber = 0;
  let held: { text: string; lineNumber: number; joined: number } | undefined;

  function* settle(current: { text: string; lineNumber: number }, reason?: string): Generator<AuditLineEvent> {
    const result = parseAuditLine(current.text);
    if (result.ok) yield { kind: 'record', record: result.record, lineNumber: current.lineNumber };
    else yield { kind: 'unparseable', reason: reason ?? result.reason, text: current.text, lineNumber: current.lineNumber };
  }

  for await (const line of lines) {
    lineNumber += 1;
    if (line.trim() === '' && !held) continue;
    if (held) {
      if (!RECORD_START.test(line) && held.joined < MAX_CONTINUATION_LINES && held.text.length < MAX_RECORD_CHARS) {
        held = { text: `${held.text}\n${line}`, lineNumber: held.lineNumber, joined: held.joined + 1 };
        const joined = parseAuditLine(held.text);
        if (joined.ok) {
          yield { kind: 'record', record: joined.record, lineNumber: held.lineNumber };
          held = undefined;
        }
        continue;
      }
      yield* settle(held);
      held = undefined;
    }
    const result = parseAuditLine(line);
    if (result.ok) {
      yield { kind: 'record', record: result.record, lineNumber };
    } else if (result.unterminated) {
      held = { text: line, lineNumber, joined: 0 };
    } else {
      yield { kind: 'unparseable', reason: result.reason, text: line, lineNumber };
    }
  }
  if (held) yield* settle(held);
}
