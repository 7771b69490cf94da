// Runs a Python file on the 32-bit MicroPython (the WebAssembly port, in Node):
//   node wasm_run.mjs MICROPYTHON_MJS HEAPSIZE_BYTES HOST_DIR:MP_DIR[:nopath][,...] SCRIPT [ARG ...]
// ("-" for none.) Each HOST_DIR's .py and .mpy files are copied into the
// port's in-memory filesystem at MP_DIR, and every MP_DIR without ":nopath"
// goes on sys.path in that order.
// SCRIPT runs as __main__ with sys.argv = [SCRIPT, ARG ...]. Output goes to
// stdout; the exit status is 0 unless the script raised (SystemExit with a
// code counts as that code).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [moduleFile, heapText, mountsText, script, ...args] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(moduleFile).href);
const mp = await loadMicroPython({
    heapsize: parseInt(heapText, 10),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    linebuffer: false,
});

function copyTree(hostDir, mpDir) {
    mp.FS.mkdirTree(mpDir);
    for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
        const hostPath = path.join(hostDir, entry.name);
        const mpPath = mpDir + "/" + entry.name;
        if (entry.isDirectory()) {
            if (entry.name !== "__pycache__") copyTree(hostPath, mpPath);
        } else if (entry.name.endsWith(".py") || entry.name.endsWith(".mpy")) {
            mp.FS.writeFile(mpPath, fs.readFileSync(hostPath));
        }
    }
}

const searchPath = [];
for (const mount of mountsText.split(",").filter((m) => m.includes(":"))) {
    const [hostDir, mpDir, option] = mount.split(":");
    copyTree(hostDir, mpDir);
    if (option !== "nopath") searchPath.push(mpDir);
}
mp.FS.mkdirTree("/tmp");

const argv = [script, ...args].map((a) => JSON.stringify(a)).join(", ");
const paths = ["", ...searchPath, ".frozen"].map((p) => JSON.stringify(p)).join(", ");
mp.runPython(`import sys\nsys.argv[:] = [${argv}]\nsys.path[:] = [${paths}]`);
let status = 0;
try {
    mp.runPython(fs.readFileSync(script, "utf8"));
} catch (error) {
    if (error.name !== "PythonError") throw error;
    if (error.type === "SystemExit") {
        const code = /SystemExit: (\d+)/.exec(error.message);
        status = code ? parseInt(code[1], 10) : 0;
    } else {
        process.stderr.write(error.message + "\n");
        status = 1;
    }
}
process.exit(status);
