// Drives a live cluster peer with the JS cluster client, as a web app
// would: `node client.mjs <api-url> <car-file>`. Prints one JSON object of
// what each call returned; the Rust test (js_client.rs) checks it against
// what the peer should have done. Exits non-zero on the first failure.
import { readFile } from 'node:fs/promises'
import { Cluster } from '@nftstorage/ipfs-cluster'

const [api, carPath] = process.argv.slice(2)
const cluster = new Cluster(api)
const out = {}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Polls `status` until every peer reports `pinned` (or 30 s pass).
const pinned = async (cid) => {
  for (let i = 0; i < 300; i++) {
    const s = await cluster.status(cid)
    const states = Object.values(s.peerMap || {}).map((p) => p.status)
    if (states.length > 0 && states.every((st) => st === 'pinned')) return s
    await sleep(100)
  }
  throw new Error(`${cid} never got pinned: ${JSON.stringify(await cluster.status(cid))}`)
}

out.version = await cluster.version()
out.info = await cluster.info()

// `add`: CIDv1 with raw leaves, the client's defaults.
const hello = new File([new TextEncoder().encode('hello from the JS client\n')], 'hello.txt')
out.add = await cluster.add(hello, { name: 'js-add', metadata: { from: 'js' } })
out.addStatus = await pinned(out.add.cid)
out.addAllocation = await cluster.allocation(out.add.cid)

// `addDirectory`: files named with their directory; the last line is the
// wrapping root, named "".
out.addDirectory = await cluster.addDirectory([
  new File([new TextEncoder().encode('a')], 'dir/a.txt'),
  new File([new TextEncoder().encode('bb')], 'dir/b.txt'),
  new File([new TextEncoder().encode('ccc')], 'dir/sub/c.txt')
])

// `addCAR`: `format=car`.
const car = await readFile(carPath)
out.addCAR = await cluster.addCAR(new Blob([car]), { name: 'js-car' })
out.carStatus = await pinned(out.addCAR.cid)

// `pin` by CID with options, `status`, `recover`, `statusAll`, `unpin`.
out.pin = await cluster.pin(out.addDirectory.at(-1).cid, {
  name: 'js-pin',
  replicationFactorMin: -1,
  replicationFactorMax: -1,
  metadata: { k: 'v' }
})
out.pinStatus = await pinned(out.pin.cid)
out.recover = await cluster.recover(out.pin.cid)
out.statusAll = await cluster.statusAll()
out.metricNames = await cluster.metricNames()
out.peerList = await cluster.peerList()
out.unpin = await cluster.unpin(out.add.cid)
out.afterUnpin = await cluster.statusAll()

process.stdout.write(JSON.stringify(out) + '\n')
