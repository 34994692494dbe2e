// Reference outputs for tests/convert_test.py, from the npm packages pinned in package-lock.json
// (nothing is downloaded at run time):
//
//   node reference.mjs tokenize DIR TEXTS     ids of each text (a JSON array of strings), with
//                                             @huggingface/tokenizers on DIR's tokenizer.json:
//                                             {"plain": [[ids]...], "special": [[ids]...]}
//                                             (plain: no special tokens added; special: the
//                                             tokenizer's own add_special_tokens)
//   node reference.mjs spm MODEL TEXTS        ids of each text with SentencePiece itself (its C++
//                                             compiled to WebAssembly, @sctg/sentencepiece-js)
//                                             on the tokenizer.model MODEL: [[ids]...]
//   node reference.mjs render DIR CASES       each case {messages, add_generation_prompt, ...}
//                                             rendered with @huggingface/jinja from DIR's
//                                             tokenizer_config.json chat_template (bos_token and
//                                             eos_token from that file): a JSON array of strings
import { readFileSync } from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";

const [mode, a, b] = process.argv.slice(2);
const readJson = (p) => JSON.parse(readFileSync(p, "utf8"));

function tokenText(t) {
    if (t === null || t === undefined) return "";
    return typeof t === "string" ? t : (t.content ?? "");
}

if (mode === "tokenize") {
    const tok = new Tokenizer(
        readJson(path.join(a, "tokenizer.json")),
        readJson(path.join(a, "tokenizer_config.json")),
    );
    const texts = readJson(b);
    const plain = texts.map((t) => tok.encode(t, { add_special_tokens: false }).ids);
    const special = texts.map((t) => tok.encode(t).ids);
    process.stdout.write(JSON.stringify({ plain, special }) + "\n");
} else if (mode === "spm") {
    const { SentencePieceProcessor } = await import("@sctg/sentencepiece-js");
    const spp = new SentencePieceProcessor();
    await spp.load(a);
    process.stdout.write(JSON.stringify(readJson(b).map((t) => spp.encodeIds(t))) + "\n");
} else if (mode === "render") {
    const cfg = readJson(path.join(a, "tokenizer_config.json"));
    let src = cfg.chat_template;
    if (Array.isArray(src)) src = src.find((x) => x.name === "default").template;
    const tpl = new Template(src);
    const out = readJson(b).map((c) =>
        tpl.render({
            bos_token: tokenText(cfg.bos_token),
            eos_token: tokenText(cfg.eos_token),
            ...c,
        }),
    );
    process.stdout.write(JSON.stringify(out) + "\n");
} else {
    process.stderr.write("usage: node reference.mjs tokenize|spm|render ...\n");
    process.exit(2);
}
