/** The human-readable form of a verification report (the JSON form is the report itself). */
import { FINDING_CODES, type Finding, type FindingCode, type VerifyReport } from '../../lambda/shared/verify';

export interface ReportTarget {
  bucket: string;
  table: string;
  region: string | undefined;
}

/** Findings listed per code in the text report; the JSON report always has them all. */
const MAX_LISTED_PER_CODE = 50;

function where(finding: Finding): string {
  const parts = [finding.instance || '(no instance)', finding.file ?? '', finding.key ? `[${finding.key}]` : ''];
  return parts.filter(Boolean).join(' ');
}

export function renderVerifyReport(report: VerifyReport, target: ReportTarget): string {
  const { totals } = report;
  const lines: string[] = [];
  const statuses = Object.entries(totals.itemsByStatus)
    .map(([status, count]) => `${status} ${count}`)
    .join(', ');
  lines.push(`Completeness verification of s3://${target.bucket} against ledger ${target.table}${target.region ? ` (${target.region})` : ''}`);
  lines.push(`  run ${report.startedAt} .. ${report.finishedAt}; stale threshold ${report.options.staleMinutes} min${report.options.deep ? '; deep (every object read back and hashed)' : ''}`);
  if (report.options.instances) lines.push(`  instances: ${report.options.instances.join(', ')}`);
  lines.push(`  ledger: ${totals.ledgerItems} items (${statuses})${totals.malformedItems ? `, ${totals.malformedItems} malformed` : ''}`);
  lines.push(
    `  S3: ${totals.objectsChecked} objects, ${totals.bytesChecked} bytes of ${totals.itemsInspected} files checked against the ledger's SHA-256` +
      (totals.objectsHashed ? `; ${totals.objectsHashed} objects (${totals.bytesHashed} bytes) re-hashed` : '') +
      `; ${totals.objectsListed} objects under the prefix`,
  );
  lines.push(
    totals.rdsConsulted
      ? `  RDS: ${totals.filesListed} files listed on ${totals.instancesListed.length} instances` +
          (totals.instancesGone.length ? `; gone: ${totals.instancesGone.join(', ')}` : '')
      : '  RDS: not consulted (files RDS lists are not compared with the ledger)',
  );
  lines.push(`  not yet stored: ${totals.bytesNotStored} bytes; backup lag ${totals.backupLagSeconds} s`);
  lines.push('');
  if (report.findings.length === 0) {
    lines.push('Result: CLEAN — every byte the ledger records is in S3 with the recorded SHA-256; nothing is lost, failed, stale or unknown.');
    return `${lines.join('\n')}\n`;
  }
  const byCode = new Map<FindingCode, Finding[]>();
  for (const finding of report.findings) byCode.set(finding.code, [...(byCode.get(finding.code) ?? []), finding]);
  lines.push(`Findings: ${report.findings.length}`);
  for (const [code, findings] of byCode) {
    lines.push(`  ${code} (${findings.length}) — ${FINDING_CODES[code]}`);
    for (const finding of findings.slice(0, MAX_LISTED_PER_CODE)) lines.push(`    ${where(finding)}: ${finding.detail}`);
    if (findings.length > MAX_LISTED_PER_CODE) lines.push(`    ... ${findings.length - MAX_LISTED_PER_CODE} more in the JSON report`);
  }
  lines.push('');
  lines.push(`Result: ${report.findings.length} FINDING${report.findings.length === 1 ? '' : 'S'}`);
  return `${lines.join('\n')}\n`;
}
