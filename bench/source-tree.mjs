// Source-like project trees for the benchmarks: TypeScript/TSX/JSON/Markdown/CSS-looking text of
// ~5 KB a file from a seeded PRNG (mulberry32; same seed, same tree), in nested folders of ~40
// files, with a few non-ASCII names, as an app's source tree looks.

/** `n` files as `{path, content}`, deterministic in `seed`. */
export function sourceFiles(n, seed) {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (k) => Math.floor(rand() * k);
  const pick = (xs) => xs[int(xs.length)];

  const words = ['user', 'project', 'file', 'session', 'event', 'state', 'config', 'token', 'cache', 'item',
    'list', 'panel', 'editor', 'preview', 'sync', 'version', 'path', 'snapshot', 'query', 'result', 'error',
    'status', 'button', 'modal', 'table', 'row', 'column', 'theme', 'layout', 'router', 'store', 'hook',
    'client', 'server', 'request', 'response', 'handler', 'value', 'option', 'filter', 'sort', 'page'];
  const types = ['string', 'number', 'boolean', 'Date', 'unknown', 'Record<string, string>', 'string[]', 'Promise<void>'];
  const cap = (w) => w[0].toUpperCase() + w.slice(1);
  const camel = (k) => { let x = pick(words); for (let i = 1; i < k; i++) x += cap(pick(words)); return x; };
  const pascal = (k) => cap(camel(k));
  const sentence = () => {
    const len = 6 + int(12);
    let x = cap(pick(words));
    for (let i = 1; i < len; i++) x += ' ' + pick(words);
    return x + '.';
  };

  const gen = {
    ts(size) {
      let out = `import { ${camel(2)}, ${camel(2)} } from '../lib/${camel(1)}';\nimport type { ${pascal(2)} } from './types';\n\n`;
      while (out.length < size) {
        const name = camel(2 + int(2));
        out += `/** ${sentence()} */\nexport function ${name}(${camel(1)}: ${pick(types)}, ${camel(1)}?: ${pick(types)}): ${pick(types)} {\n`;
        const body = 3 + int(8);
        for (let i = 0; i < body; i++) {
          switch (int(5)) {
            case 0: out += `  const ${camel(2)} = ${camel(1)}.${camel(1)}(${int(1000)});\n`; break;
            case 1: out += `  if (${camel(1)} === ${int(10)}) {\n    return ${camel(2)}(${camel(1)});\n  }\n`; break;
            case 2: out += `  // ${sentence()}\n`; break;
            case 3: out += `  ${camel(1)}.push({ ${camel(1)}: '${camel(1)}', ${camel(1)}: ${int(100)} });\n`; break;
            default: out += `  await ${camel(2)}(\`${camel(1)}/\${${camel(1)}}\`);\n`;
          }
        }
        out += `  return ${camel(2)};\n}\n\n`;
      }
      return out;
    },
    tsx(size) {
      const comp = pascal(2);
      let out = `import React from 'react';\nimport { ${pascal(2)} } from './${pascal(1)}';\n\nexport function ${comp}(props: ${comp}Props) {\n  return (\n    <div className="${camel(1)}-${camel(1)}">\n`;
      while (out.length < size - 40) {
        out += `      <${pascal(1)} ${camel(1)}={props.${camel(1)}} on${pascal(1)}={() => ${camel(2)}(${int(50)})}>${sentence()}</${pascal(1)}>\n`;
      }
      return out + '    </div>\n  );\n}\n';
    },
    json(size) {
      const o = {};
      while (JSON.stringify(o, null, 2).length < size) {
        o[camel(2)] = int(3) === 0 ? int(10000) : int(2) === 0 ? [camel(1), camel(1), int(9)] : { [camel(1)]: sentence(), enabled: int(2) === 0 };
      }
      return JSON.stringify(o, null, 2) + '\n';
    },
    md(size) {
      let out = `# ${cap(camel(2))}\n\n`;
      while (out.length < size) {
        out += int(4) === 0 ? `## ${sentence()}\n\n` : '';
        out += Array.from({ length: 2 + int(4) }, sentence).join(' ') + '\n\n';
        if (int(3) === 0) out += `- ${sentence()}\n- ${sentence()}\n\n`;
      }
      return out;
    },
    css(size) {
      let out = '';
      while (out.length < size) {
        out += `.${camel(1)}-${camel(1)} {\n  margin: ${int(32)}px ${int(32)}px;\n  color: #${int(0xffffff).toString(16).padStart(6, '0')};\n  display: ${pick(['flex', 'grid', 'block', 'none'])};\n}\n\n`;
      }
      return out;
    },
  };

  // Folders: ~40 files each, nested like an app's source tree.
  const tops = ['src/components', 'src/pages', 'src/lib', 'src/hooks', 'src/store', 'docs', 'config', 'src/styles'];
  const ndirs = Math.max(tops.length, Math.ceil(n / 40));
  const dirs = tops.slice();
  while (dirs.length < ndirs) {
    const base = pick(tops);
    dirs.push(int(3) === 0 ? `${base}/${camel(1)}/${camel(1)}` : `${base}/${camel(1)}`);
  }
  const unicode = ['docs/über-uns.md', 'src/i18n/日本語.json', 'src/components/Ωmega/Ωmega.tsx', 'docs/naïve café.md', 'public/locales/español.json'];

  return Array.from({ length: n }, (_, i) => {
    const size = 4000 + int(2000); // ~5 KB
    let path;
    if (i < unicode.length && n >= 100) {
      path = unicode[i].normalize('NFC');
    } else {
      const d = dirs[i % dirs.length];
      const r = int(100);
      const kind = d.startsWith('docs') ? 'md' : d.startsWith('config') ? 'json' : d.startsWith('src/styles') ? 'css'
        : d.startsWith('src/components') || d.startsWith('src/pages') ? (r < 80 ? 'tsx' : 'css')
          : r < 85 ? 'ts' : 'json';
      const name = kind === 'tsx' ? pascal(2) : camel(2);
      path = `${d}/${name}${i}.${kind}`;
    }
    return { path, content: gen[path.slice(path.lastIndexOf('.') + 1)](size) };
  });
}
