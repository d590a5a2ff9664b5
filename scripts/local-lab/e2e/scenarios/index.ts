/** The fault suite's scenarios, in the order they run. */
import type { Scenario } from '../harness';
import { concurrentFunctions } from './concurrent';
import { failedMidFile, killedMidFile, timeoutHandOff } from './crashes';
import { duplicateScanMessages, replayedStreamRecords } from './duplicates';
import { finalMarker, lineLongerThanPage, slowEndpoint, throttling, truncatedPages } from './endpoint-faults';
import { rotationDuringDownload, steadyGrowth } from './mariadb';
import { downloaderOutage } from './outage';
import { malformedMessage, vanishedFiles } from './vanished';

export const SCENARIOS: readonly Scenario[] = [
  steadyGrowth,
  rotationDuringDownload,
  throttling,
  timeoutHandOff,
  killedMidFile,
  failedMidFile,
  downloaderOutage,
  duplicateScanMessages,
  replayedStreamRecords,
  truncatedPages,
  lineLongerThanPage,
  finalMarker,
  vanishedFiles,
  malformedMessage,
  slowEndpoint,
  concurrentFunctions,
];
