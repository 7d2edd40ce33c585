// Drives a cluster peer's IPFS proxy with Kubo's JS client
// (kubo-rpc-client), as an app written for Kubo would:
// `node kubo.mjs <proxy-url>`. Prints one JSON object of what each call
// returned; the Rust test (ipfs_proxy.rs) checks it against the cluster's
// pinset. Exits non-zero on the first failure.
import { create } from 'kubo-rpc-client'

const [url] = process.argv.slice(2)
const ipfs = create({ url })
const out = {}
const text = (chunks) => Buffer.concat(chunks.map((c) => Buffer.from(c))).toString()

// add: a cluster add, answered as Kubo answers.
const added = await ipfs.add({ path: 'js.txt', content: new TextEncoder().encode('hello from kubo-rpc-client\n') })
out.add = { cid: added.cid.toString(), path: added.path, size: added.size }

// cat of what was added.
const chunks = []
for await (const c of ipfs.cat(added.cid)) chunks.push(c)
out.cat = text(chunks)

// block put of a raw block (not pinned), then pin add of it.
const blockCid = await ipfs.block.put(new TextEncoder().encode('a JS block'))
out.blockPut = blockCid.toString()
out.pinAdd = (await ipfs.pin.add(blockCid)).toString()

// pin ls: every pin, and one.
out.pinLs = []
for await (const p of ipfs.pin.ls()) out.pinLs.push({ cid: p.cid.toString(), type: p.type })
out.pinLsOne = []
for await (const p of ipfs.pin.ls({ paths: [blockCid] })) out.pinLsOne.push({ cid: p.cid.toString(), type: p.type })

// pin rm, and an error in Kubo's shape.
out.pinRm = (await ipfs.pin.rm(blockCid)).toString()
try {
  await ipfs.pin.add('notacid')
  out.badPin = 'no error'
} catch (e) {
  out.badPin = e.message
}

console.log(JSON.stringify(out))
