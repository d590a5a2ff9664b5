#!/usr/bin/env node
/**
 * CDK app entry: the only place that reads CDK context. It collects the app's keys, validates them into
 * one typed config (a bad value stops synth with a message naming the key and its accepted values) and
 * creates the stacks from it.
 */
import { App } from 'aws-cdk-lib';
import { createStacks } from '../lib/app-stacks';
import { AppConfig, CONTEXT_KEYS, ConfigError, parseConfig } from '../lib/config';

const app = new App();
const raw: Record<string, unknown> = {};
for (const key of CONTEXT_KEYS) {
  const value: unknown = app.node.tryGetContext(key);
  if (value !== undefined) raw[key] = value;
}

let config: AppConfig;
try {
  config = parseConfig(raw);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // The message alone says what to fix; a stack trace into the validator would only bury it.
  console.error(error.message);
  process.exit(1);
}
createStacks(app, config);
