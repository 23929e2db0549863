#!/usr/bin/env node
// The installed `avic-smp` executable.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
