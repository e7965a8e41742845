#!/usr/bin/env node
// Gives npm `solc` (solcjs) the small part of the native `solc` command line that
// py-solc-x uses: `--version`, and `--standard-json` with `--base-path`,
// `--include-path` and `--allow-paths`. Imports that are not in the JSON input are
// read from the base path or an include path, and only from inside an allowed
// directory, like the native compiler. stdout carries nothing but the answer: solcjs
// and the Emscripten runtime may print stray lines, so they go to stderr.
'use strict';

const fs = require('fs');
const path = require('path');

const PROJECT_ROOT = path.resolve(__dirname, '..');
const KNOWN_VALUE_FLAGS = ['--base-path', '--include-path', '--allow-paths'];
const USAGE =
  'solc_shim supports --version, --standard-json, --base-path <dir>, ' +
  '--include-path <dir> (repeatable) and --allow-paths <dir>[,<dir>...]';

function fail(message, exitCode) {
  process.stderr.write(message + '\n');
  process.exit(exitCode);
}

// Parses argv into options; an unknown flag or a positional argument is refused.
// The message starts like native solc's ("unrecognised option '...'") so that
// py-solc-x reports it as UnknownOption.
function parseArgs(argv) {
  const options = { version: false, standardJson: false, basePath: null, includePaths: [], allowPaths: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    let value = flag !== arg ? arg.slice(eq + 1) : null;
    if (flag === '--version') {
      options.version = true;
      continue;
    }
    if (flag === '--standard-json') {
      options.standardJson = true;
      continue;
    }
    if (!KNOWN_VALUE_FLAGS.includes(flag)) {
      if (arg.startsWith('-') && arg !== '-') {
        fail(`unrecognised option '${flag}'. ${USAGE}`, 2);
      }
      fail(`unrecognised option '${arg}': source file arguments are not supported. ${USAGE}`, 2);
    }
    if (value === null) {
      i += 1;
      if (i >= argv.length) fail(`Invalid option to ${flag}: a directory is required`, 2);
      value = argv[i];
    }
    if (value === '') fail(`Invalid option to ${flag}: empty value`, 2);
    if (flag === '--base-path') options.basePath = value;
    if (flag === '--include-path') options.includePaths.push(value);
    if (flag === '--allow-paths') options.allowPaths.push(...value.split(',').filter((p) => p));
  }
  return options;
}

function loadSolc() {
  let solcPath;
  try {
    // CREDITNET_NODE_MODULES points at a node_modules folder shared by several clones.
    const override = process.env.CREDITNET_NODE_MODULES;
    const root = override ? path.dirname(path.resolve(override)) : PROJECT_ROOT;
    solcPath = require.resolve('solc', { paths: [root] });
  } catch (error) {
    fail('npm tools missing: run `make setup`', 3);
  }
  return require(solcPath);
}

// The canonical form of a directory or file, so that `..` segments and symlinks
// cannot lead outside an allowed directory.
function canonical(p) {
  try {
    return fs.realpathSync(path.resolve(p));
  } catch (error) {
    return path.resolve(p);
  }
}

function isInside(file, directory) {
  const relative = path.relative(directory, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

// Builds the import callback: source unit name -> file under base path or an
// include path, refused unless it lies inside the base path, an include path or
// an --allow-paths directory.
function makeImportCallback(options) {
  const basePath = options.basePath !== null ? options.basePath : process.cwd();
  const prefixes = [basePath, ...options.includePaths];
  const allowed = [...prefixes, ...options.allowPaths].map(canonical);
  return function readImport(sourceUnitName) {
    const candidates = path.isAbsolute(sourceUnitName)
      ? [sourceUnitName]
      : prefixes.map((prefix) => path.join(prefix, sourceUnitName));
    for (const candidate of candidates) {
      if (!fs.existsSync(candidate)) continue;
      const file = canonical(candidate);
      if (!allowed.some((directory) => isInside(file, directory))) {
        return { error: `${sourceUnitName}: path is outside the allowed directories` };
      }
      try {
        return { contents: fs.readFileSync(file, 'utf8') };
      } catch (error) {
        return { error: `${sourceUnitName}: cannot read: ${error.message}` };
      }
    }
    return { error: `${sourceUnitName}: not found in the base path or any include path` };
  };
}

// Runs `fn` with console output and process.stdout redirected to stderr, so that
// nothing but the final JSON reaches stdout.
function withStdoutOnStderr(fn) {
  const originalLog = console.log;
  const originalInfo = console.info;
  const originalWrite = process.stdout.write;
  console.log = (...args) => console.error(...args);
  console.info = (...args) => console.error(...args);
  process.stdout.write = (chunk, ...rest) => process.stderr.write(chunk, ...rest);
  try {
    return fn();
  } finally {
    console.log = originalLog;
    console.info = originalInfo;
    process.stdout.write = originalWrite;
  }
}

function printVersion() {
  const solc = withStdoutOnStderr(loadSolc);
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
}

function compileStandardJson(options) {
  const input = fs.readFileSync(0, 'utf8');
  const output = withStdoutOnStderr(() => {
    const solc = loadSolc();
    return solc.compile(input, { import: makeImportCallback(options) });
  });
  process.stdout.write(output + '\n');
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.version) {
    printVersion();
    return;
  }
  if (!options.standardJson) fail(`no mode given. ${USAGE}`, 2);
  compileStandardJson(options);
}

main();
