// The packages as a newcomer gets them: packs every package (`pnpm pack`, as published),
// installs the tarballs into a scratch app outside the workspace, and checks the READMEs
// against them:
//   - every ```ts example of every README typechecks (strict) against the installed packages;
//   - examples marked `<!-- example: node -->` run in Node (with fake-indexeddb) and print
//     what their `// → …` comments say, in order;
//   - the example marked `<!-- example: vite.config -->` serves the sync protocol under
//     both `vite` (dev) and `vite preview`;
//   - examples marked `<!-- example: browser -->` run as pages of that dev server in
//     headless Chromium: no error, and they render (or log what their comments say);
//   - examples marked `<!-- example: server -->` (the server's mounting recipes) run in Node
//     on a free PORT with a JWT_SECRET, each in a new directory, and must serve the protocol
//     under /sync to a client with a token signed by that secret.
// Fragments (examples without imports) are checked with the declarations of
// scripts/check-packages/globals.d.ts, the names the READMEs' prose introduces (db, feed, token…).
//
// Usage: node scripts/check-packages.mjs [--keep]   (--keep leaves the scratch app in place)
import { spawn, spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildPackages } from './build-packages.mjs'
import { freePort } from './free-port.mjs'
import { signToken } from './sync-server-process.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = ['core', 'react', 'vue', 'solid', 'svelte', 'devtools', 'testing', 'server']
const READMES = ['README.md', ...PACKAGES.map((name) => `packages/${name}/README.md`)]
/** Third-party packages the examples import, at the versions the workspace tests with. */
const THIRD_PARTY = [
  'dexie',
  'react',
  'react-dom',
  '@types/react',
  '@types/react-dom',
  'vue',
  'solid-js',
  'svelte',
  'msw',
  'vite',
  'fake-indexeddb',
  'typescript',
  '@types/node',
  'zod',
  'hono',
  '@hono/node-server',
  'express',
  '@types/express',
]
const keep = process.argv.includes('--keep')
const log = (...args) => console.log('[check-packages]', ...args)
const failures = []
const fail = (message) => {
  failures.push(message)
  console.error(`[check-packages] FAIL ${message}`)
}

/** The pnpm that runs this script (`pnpm test`), else the one on the PATH, else npx's. */
function pnpmCommand() {
  const execPath = process.env.npm_execpath
  if (execPath && /pnpm/.test(execPath)) {
    // A script (pnpm.cjs) runs with Node; pnpm 12 is a native executable.
    return /\.[cm]?js$/.test(execPath) ? [process.execPath, [execPath]] : [execPath, []]
  }
  if (spawnSync('pnpm', ['--version']).status === 0) return ['pnpm', []]
  return ['npx', ['--yes', 'pnpm@12.21.0']]
}
const [pnpm, pnpmArgs] = pnpmCommand()
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 300_000, ...options })
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`,
    )
  }
  return result.stdout
}
const runPnpm = (args, options) => run(pnpm, [...pnpmArgs, ...args], options)

/** The version of `name` installed in the workspace. */
function installedVersion(name) {
  for (const dir of ['', ...PACKAGES.map((p) => `packages/${p}/`), 'playground/']) {
    const file = join(root, dir, 'node_modules', name, 'package.json')
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')).version
  }
  throw new Error(`${name} is not installed in the workspace`)
}

/** ```ts blocks of a README, with the `<!-- example: … -->` mark just above each. */
function examples(readme) {
  const text = readFileSync(join(root, readme), 'utf8')
  const blocks = []
  const fence = /(?:<!-- example: ([\w.]+) -->\n\n?)?```ts\n([\s\S]*?)```/g
  for (let match; (match = fence.exec(text));) {
    const line = text.slice(0, match.index).split('\n').length
    blocks.push({ readme, line, mode: match[1] ?? 'typecheck', code: match[2] })
  }
  return blocks
}

/** Expected output of a runnable example: its `// → …` comments, in order. */
const expectedOutput = (code) => [...code.matchAll(/\/\/ → (.*)$/gm)].map((m) => m[1].trim())

/** Starts `vite <args>` in `dir`, resolves once it answers on `port`; returns the stop function. */
async function startVite(dir, args, port) {
  const child = spawn(
    join(dir, 'node_modules/.bin/vite'),
    [...args, '--port', String(port), '--strictPort', '--host', '127.0.0.1'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vite ${args.join(' ')} exited:\n${output}`)
    try {
      await fetch(`http://127.0.0.1:${port}/`)
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`vite ${args.join(' ')} did not start:\n${output}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  return () => {
    child.kill()
    return output
  }
}

/** Speaks the protocol to `{base}/sync`: a push is acknowledged and the pull returns it. */
async function checkSyncServer(base, what, headers = {}) {
  const push = await fetch(`${base}/sync/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      v: 2,
      clientId: 'check',
      batches: [{ rev: 1, tx: 't1', at: 1, changes: [{ type: 'create', table: 'todos', key: 1, value: { id: 1 } }] }],
    }),
  })
  const pushed = push.ok ? await push.json() : undefined
  if (!pushed || pushed.acked?.[0]?.rev !== 1)
    fail(`${what}: POST /sync/push answered ${push.status} ${JSON.stringify(pushed)}`)
  const pull = await fetch(`${base}/sync/pull?v=2&since=0&clientId=other`, { headers })
  const type = pull.headers.get('content-type') ?? ''
  const pulled = type.includes('json') ? await pull.json() : await pull.text()
  if (!pull.ok || pulled.batches?.length !== 1)
    fail(`${what}: GET /sync/pull answered ${pull.status} ${type}: ${JSON.stringify(pulled).slice(0, 200)}`)
  else log(`${what}: push acknowledged, pull returned it`)
}

/**
 * Runs each server recipe (compiled) in Node, in a directory of its own, on a free port:
 * once it answers, a client with a token speaks the protocol to it under /sync.
 */
async function runServerRecipes(blocks, scratch) {
  if (blocks.length === 0) return fail('no README example is marked <!-- example: server -->')
  const secret = 'check-packages-secret'
  const headers = { authorization: `Bearer ${signToken(secret, 'checker')}` }
  for (const block of blocks) {
    const where = `${block.readme}:${block.line}`
    const cwd = mkdtempSync(join(scratch, 'recipe-'))
    const port = await freePort()
    const child = spawn(process.execPath, [join(scratch, 'out', `${block.file}.js`)], {
      cwd,
      env: { ...process.env, PORT: String(port), JWT_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    try {
      const base = `http://127.0.0.1:${port}`
      const deadline = Date.now() + 60_000
      let up = false
      while (!up && child.exitCode === null && Date.now() < deadline) {
        up = await fetch(`${base}/`).then(
          () => true,
          () => false,
        )
        if (!up) await new Promise((resolve) => setTimeout(resolve, 200))
      }
      if (!up) fail(`${where} does not serve on PORT (${child.exitCode ?? 'no answer'}):\n${output}`)
      else await checkSyncServer(base, `${where} (a server recipe)`, headers)
    } finally {
      child.kill()
    }
  }
}

/**
 * Opens each browser example's page in headless Chromium: it must raise no error, log what
 * its `// → …` comments say (when it has any), and otherwise render something into
 * `#root` / `#app` or mount the devtools.
 */
async function runInBrowser(pages, base) {
  if (pages.length === 0) return fail('no README example is marked <!-- example: browser -->')
  const { chromium } = await import('@playwright/test')
  const { chromiumArgs, ensureChromium } = await import('./chromium.mjs')
  const browser = await chromium.launch({ executablePath: ensureChromium(), args: chromiumArgs })
  try {
    for (const block of pages) {
      const where = `${block.readme}:${block.line}`
      const page = await browser.newPage()
      const errors = []
      const logged = []
      page.on('pageerror', (error) => errors.push(error.message))
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text())
        if (message.type() === 'log') logged.push(message.text())
      })
      await page.goto(`${base}/${block.file}.html`)
      const expected = expectedOutput(block.code)
      const deadline = Date.now() + 10_000
      const done = async () =>
        expected.length
          ? logged.length >= expected.length
          : page.evaluate(() => !!document.querySelector('#root > *, #app > *, [data-changecast-devtools]'))
      while (!(await done()) && errors.length === 0 && Date.now() < deadline) await page.waitForTimeout(100)
      if (errors.length) fail(`${where} fails in Chromium: ${errors.join('; ')}`)
      else if (expected.length && JSON.stringify(logged.slice(0, expected.length)) !== JSON.stringify(expected)) {
        fail(`${where} logs ${JSON.stringify(logged)} in Chromium, its comments say ${JSON.stringify(expected)}`)
      } else if (!(await done())) fail(`${where} renders nothing in Chromium`)
      else log(`${where} runs in Chromium${expected.length ? ' and logs what it says' : ' and renders'}`)
      await page.close()
    }
  } finally {
    await browser.close()
  }
}

async function main() {
  log('building the packages')
  buildPackages(PACKAGES)

  const scratch = mkdtempSync(join(os.tmpdir(), 'changecast-app-'))
  const tarballs = join(scratch, 'tarballs')
  mkdirSync(tarballs)
  try {
    log(`packing into ${tarballs}`)
    const files = {}
    for (const name of PACKAGES) {
      runPnpm(['pack', '--pack-destination', tarballs], { cwd: join(root, 'packages', name) })
      const version = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8')).version
      files[`@changecast/${name}`] = `file:./tarballs/changecast-${name}-${version}.tgz`
      // What an app receives: no workspace ranges, scripts or dev dependencies.
      const manifest = run('tar', [
        '-xOzf',
        join(tarballs, `changecast-${name}-${version}.tgz`),
        'package/package.json',
      ])
      const pkg = JSON.parse(manifest)
      if (manifest.includes('workspace:')) fail(`@changecast/${name}: the packed package.json keeps a workspace: range`)
      if (pkg.scripts || pkg.devDependencies)
        fail(`@changecast/${name}: the packed package.json keeps scripts or devDependencies`)
      const listing = run('tar', ['-tzf', join(tarballs, `changecast-${name}-${version}.tgz`)])
      for (const file of ['package/README.md', 'package/LICENSE', 'package/dist/index.js', 'package/dist/index.d.ts']) {
        if (!listing.split('\n').includes(file)) fail(`@changecast/${name}: the tarball has no ${file}`)
      }
      if (name === 'core' && !listing.includes('package/protocol.md'))
        fail('@changecast/core: the tarball has no protocol.md')
    }

    const dependencies = { ...files }
    for (const name of THIRD_PARTY) dependencies[name] = installedVersion(name)
    writeFileSync(
      join(scratch, 'package.json'),
      JSON.stringify({ name: 'changecast-scratch-app', private: true, type: 'module', dependencies }, null, 2),
    )
    // Every @changecast/* dependency (peer or not) resolves to its tarball.
    writeFileSync(
      join(scratch, 'pnpm-workspace.yaml'),
      `overrides:\n${Object.entries(files)
        .map(([name, spec]) => `  '${name}': '${spec}'`)
        .join('\n')}\nallowBuilds:\n  esbuild: true\n  msw: false\n`,
    )
    log(`installing the tarballs into ${scratch}`)
    runPnpm(['install', '--prefer-offline', '--config.auto-install-peers=true'], { cwd: scratch })
    const installed = JSON.parse(readFileSync(join(scratch, 'node_modules/@changecast/react/package.json'), 'utf8'))
    if (installed.peerDependencies?.dexie) fail('@changecast/react declares a dexie peer it never imports')

    // One file per example; examples that augment types (`declare module`) get a program each.
    const blocks = READMES.flatMap(examples)
    const src = join(scratch, 'src')
    mkdirSync(src)
    copyFileSync(join(root, 'scripts/check-packages/globals.d.ts'), join(src, 'readme-globals.d.ts'))
    const programs = [[]]
    for (const block of blocks) {
      block.file = `${block.readme.replace(/[/.]/g, '_')}_${block.line}`
      const isModule = /^\s*(import|export)\s/m.test(block.code)
      writeFileSync(join(src, `${block.file}.ts`), `${block.code}${isModule ? '' : '\nexport {}\n'}`)
      if (/^declare module /m.test(block.code)) programs.push([block])
      else programs[0].push(block)
    }
    const compilerOptions = {
      target: 'ES2022',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      module: 'ESNext',
      moduleResolution: 'Bundler',
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      verbatimModuleSyntax: true,
      types: ['node'],
      outDir: 'out',
      rootDir: 'src',
    }
    for (const [n, program] of programs.entries()) {
      const config = join(scratch, `tsconfig.${n}.json`)
      writeFileSync(
        config,
        JSON.stringify({
          compilerOptions,
          files: ['src/readme-globals.d.ts', ...program.map((block) => `src/${block.file}.ts`)],
        }),
      )
      const result = spawnSync(process.execPath, [join(scratch, 'node_modules/typescript/bin/tsc'), '-p', config], {
        cwd: scratch,
        encoding: 'utf8',
      })
      if (result.status !== 0) fail(`README examples do not typecheck:\n${result.stdout}${result.stderr}`)
    }
    log(`${blocks.length} README examples typecheck against the packed packages`)

    for (const block of blocks.filter((b) => b.mode === 'node')) {
      const where = `${block.readme}:${block.line}`
      const result = spawnSync(process.execPath, ['--import', 'fake-indexeddb/auto', `out/${block.file}.js`], {
        cwd: scratch,
        encoding: 'utf8',
        timeout: 60_000,
      })
      const printed = result.stdout.split('\n').filter(Boolean)
      const expected = expectedOutput(block.code)
      if (result.status !== 0)
        fail(`${where} exits with ${result.status ?? result.signal}:\n${result.stdout}${result.stderr}`)
      else if (JSON.stringify(printed) !== JSON.stringify(expected)) {
        fail(`${where} prints\n  ${printed.join('\n  ')}\nbut its comments say\n  ${expected.join('\n  ')}`)
      } else log(`${where} runs in Node and prints what it says (${expected.length} lines)`)
    }

    await runServerRecipes(
      blocks.filter((b) => b.mode === 'server'),
      scratch,
    )

    const viteBlocks = blocks.filter((b) => b.mode === 'vite.config')
    if (viteBlocks.length === 0) fail('no README example is marked <!-- example: vite.config -->')
    for (const block of viteBlocks) {
      const where = `${block.readme}:${block.line}`
      writeFileSync(join(scratch, 'vite.config.ts'), block.code)
      writeFileSync(join(scratch, 'index.html'), '<!doctype html><title>scratch</title><p>scratch app</p>\n')
      // Browser examples are pages of the same dev server: served with the config under test.
      const pages = blocks.filter((b) => b.mode === 'browser')
      for (const page of pages) {
        writeFileSync(
          join(scratch, `${page.file}.html`),
          `<!doctype html><link rel="icon" href="data:,"><title>${page.file}</title><div id="root"></div><div id="app"></div>` +
            `<script type="module" src="/src/${page.file}.ts"></script>\n`,
        )
      }
      const devPort = await freePort()
      const dev = await startVite(scratch, [], devPort)
      try {
        await checkSyncServer(`http://127.0.0.1:${devPort}`, `${where} under vite dev`)
        await runInBrowser(pages, `http://127.0.0.1:${devPort}`)
      } finally {
        dev()
      }
      run(join(scratch, 'node_modules/.bin/vite'), ['build'], { cwd: scratch })
      const port = await freePort()
      const preview = await startVite(scratch, ['preview'], port)
      try {
        await checkSyncServer(`http://127.0.0.1:${port}`, `${where} under vite preview`)
      } finally {
        preview()
      }
    }

    // The main entry of @changecast/testing loads neither msw nor vite: without them installed,
    // it still imports.
    const pnpmDir = join(scratch, 'node_modules/.pnpm')
    for (const dir of readdirSync(pnpmDir).filter((d) => /^(msw|vite)@/.test(d))) {
      renameSync(join(pnpmDir, dir), join(pnpmDir, `hidden-${dir}`))
    }
    const bare = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const t = await import('@changecast/testing'); console.log(Object.keys(t).sort().join())",
      ],
      { cwd: scratch, encoding: 'utf8' },
    )
    if (bare.status !== 0) fail(`@changecast/testing does not import without msw and vite:\n${bare.stderr}`)
    else log(`@changecast/testing imports without msw and vite: ${bare.stdout.trim()}`)
  } finally {
    if (keep) log(`kept ${scratch}`)
    else rmSync(scratch, { recursive: true, force: true })
  }
  if (failures.length) {
    console.error(`[check-packages] ${failures.length} problem(s)`)
    process.exit(1)
  }
  log('the packed packages work as their READMEs say')
}

await main()
