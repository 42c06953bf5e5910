// A realistic, deterministic sample project: an Expo / React Native app tree (package.json,
// app.json, App.tsx, components, screens, hooks, utils, navigation, theme, store, api, i18n,
// tests, docs), two unicode names, and one binary: a PNG icon generated in code.
//
//   sampleApp(200)  → { files: [{path, content}], binary: {path, bytes, contentType} }
//
// Same count → same files, byte for byte. Larger counts add feature folders
// (src/features/<name>/{components,screens,hooks}/…), so 2,000 files look like a big app.
import { deflateSync } from 'node:zlib';

const COMPONENTS = ['Button', 'Card', 'Avatar', 'Header', 'Footer', 'Badge', 'Chip', 'Divider',
  'Icon', 'Input', 'Label', 'List', 'ListItem', 'Modal', 'Sheet', 'Spinner', 'Switch', 'Tabs',
  'Toast', 'Tooltip', 'Banner', 'EmptyState', 'ErrorBoundary', 'Skeleton', 'SearchBar',
  'SegmentedControl', 'Slider', 'Stepper', 'TextArea', 'Checkbox', 'RadioGroup', 'Dropdown',
  'DatePicker', 'ProgressBar', 'Rating', 'Carousel', 'ImageTile', 'PriceTag', 'QuantityPicker',
  'SectionHeader', 'Screen', 'SafeArea', 'KeyboardView', 'PullToRefresh', 'FloatingButton',
  'NotificationDot', 'Timeline', 'Map', 'ChartBar', 'ChartLine'];
const SCREENS = ['Home', 'Login', 'Signup', 'ForgotPassword', 'Profile', 'EditProfile', 'Settings',
  'Notifications', 'Search', 'ProductList', 'ProductDetail', 'Cart', 'Checkout', 'OrderHistory',
  'OrderDetail', 'Favorites', 'Chat', 'ChatThread', 'Onboarding', 'About', 'Help', 'Privacy',
  'Terms', 'NotFound', 'Splash'];
const HOOKS = ['useAuth', 'useCart', 'useDebounce', 'useTheme', 'useFetch', 'useForm', 'useToggle',
  'useKeyboard', 'useOrientation', 'useInterval', 'usePrevious', 'useLocalStorage', 'useAppState',
  'useNetwork', 'usePagination', 'useSearch', 'useFavorites', 'useNotifications', 'useLocation',
  'useCountdown'];
const UTILS = ['format', 'currency', 'dates', 'validation', 'storage', 'logger', 'analytics',
  'permissions', 'strings', 'numbers', 'arrays', 'colors', 'platform', 'haptics', 'share',
  'deeplinks', 'errors', 'retry', 'throttle', 'legacy'];
const FEATURES = ['catalog', 'checkout', 'accounts', 'messaging', 'loyalty', 'reviews', 'orders',
  'shipping', 'payments', 'search', 'recommendations', 'wishlist', 'support', 'referrals',
  'coupons', 'inventory', 'analytics', 'onboarding', 'settings', 'notifications', 'media',
  'social', 'maps', 'events', 'booking', 'subscriptions', 'gifting', 'returns', 'stores',
  'rewards', 'surveys', 'feedback', 'blog', 'videos', 'music', 'podcasts', 'games', 'quizzes',
  'badges', 'leaderboard'];

const kebab = (s) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

function component(name, n) {
  return `import React from 'react';
import { Pressable, StyleSheet, Text, View } from 'react-native';
import { useTheme } from '../hooks/useTheme';

export interface ${name}Props {
  title?: string;
  subtitle?: string;
  onPress?: () => void;
  testID?: string;
}

/** ${name}: part of the design system (variant ${n}). */
export function ${name}({ title = '${name}', subtitle, onPress, testID = '${kebab(name)}' }: ${name}Props) {
  const theme = useTheme();
  return (
    <Pressable onPress={onPress} testID={testID} style={({ pressed }) => [styles.root, pressed && styles.pressed]}>
      <View style={[styles.box, { backgroundColor: theme.colors.surface }]}>
        <Text style={[styles.title, { color: theme.colors.text }]}>{title}</Text>
        {subtitle ? <Text style={styles.subtitle}>{subtitle}</Text> : null}
      </View>
    </Pressable>
  );
}

const styles = StyleSheet.create({
  root: { marginVertical: ${4 + (n % 4) * 2} },
  pressed: { opacity: 0.7 },
  box: { borderRadius: ${6 + (n % 5)}, padding: ${8 + (n % 3) * 4} },
  title: { fontSize: ${14 + (n % 4)}, fontWeight: '600' },
  subtitle: { fontSize: 12, opacity: 0.6, marginTop: 2 },
});

export default ${name};
`;
}

function screen(name, n) {
  return `import React, { useCallback, useState } from 'react';
import { FlatList, RefreshControl, StyleSheet, Text, View } from 'react-native';
import { Header } from '../components/Header';
import { Card } from '../components/Card';
import { useFetch } from '../hooks/useFetch';

type Item = { id: string; title: string; detail: string };

export default function ${name}Screen() {
  const { data, reload, loading } = useFetch<Item[]>('/api/${kebab(name)}');
  const [selected, setSelected] = useState<string | null>(null);
  const onRefresh = useCallback(() => { void reload(); }, [reload]);

  return (
    <View style={styles.container}>
      <Header title="${name.replace(/([a-z])([A-Z])/g, '$1 $2')}" />
      <FlatList
        data={data ?? []}
        keyExtractor={(item) => item.id}
        refreshControl={<RefreshControl refreshing={loading} onRefresh={onRefresh} />}
        renderItem={({ item }) => (
          <Card title={item.title} subtitle={item.detail} onPress={() => setSelected(item.id)} />
        )}
        ListEmptyComponent={<Text style={styles.empty}>Nothing here yet (${n})</Text>}
      />
      {selected ? <Text style={styles.footer}>Selected: {selected}</Text> : null}
    </View>
  );
}

const styles = StyleSheet.create({
  container: { flex: 1, padding: 16 },
  empty: { textAlign: 'center', marginTop: 48, opacity: 0.5 },
  footer: { padding: 12, textAlign: 'center' },
});
`;
}

function hook(name, n) {
  return `import { useEffect, useRef, useState } from 'react';

/** ${name}: shared state logic (${n}). */
export function ${name}<T = unknown>(initial?: T) {
  const [value, setValue] = useState<T | undefined>(initial);
  const mounted = useRef(true);
  useEffect(() => () => { mounted.current = false; }, []);
  const update = (next: T) => { if (mounted.current) setValue(next); };
  return { value, update, reset: () => update(initial as T) } as const;
}

export default ${name};
`;
}

function util(name, n) {
  return `// ${name}: small pure helpers, unit-tested in __tests__/${name}.test.ts.

export const ${name.toUpperCase()}_VERSION = ${n + 1};

export function ${name}Identity<T>(value: T): T {
  return value;
}

export function ${name}Clamp(value: number, min = 0, max = ${100 + n}): number {
  return Math.min(max, Math.max(min, value));
}

export function ${name}Join(parts: Array<string | undefined | null>, sep = ' '): string {
  return parts.filter(Boolean).join(sep);
}
`;
}

function unitTest(name) {
  return `import { ${name}Clamp, ${name}Join } from '../src/utils/${name}';

describe('${name}', () => {
  it('clamps', () => {
    expect(${name}Clamp(-1)).toBe(0);
    expect(${name}Clamp(5, 0, 3)).toBe(3);
  });
  it('joins', () => {
    expect(${name}Join(['a', undefined, 'b'])).toBe('a b');
  });
});
`;
}

const json = (v) => `${JSON.stringify(v, null, 2)}\n`;

function baseFiles() {
  const files = [];
  const add = (path, content) => files.push({ path, content });
  add('package.json', json({
    name: 'sample-expo-app', version: '1.0.0', main: 'index.js', private: true,
    scripts: { start: 'expo start', android: 'expo start --android', ios: 'expo start --ios', web: 'expo start --web', test: 'jest' },
    dependencies: { expo: '~52.0.0', react: '18.3.1', 'react-native': '0.76.3', '@react-navigation/native': '^7.0.0', zustand: '^5.0.0' },
    devDependencies: { '@babel/core': '^7.25.0', typescript: '^5.3.3', jest: '^29.7.0' },
  }));
  add('app.json', json({
    expo: {
      name: 'Sample App', slug: 'sample-app', version: '1.0.0', orientation: 'portrait',
      icon: './assets/icon.png', userInterfaceStyle: 'automatic',
      ios: { supportsTablet: true, bundleIdentifier: 'com.example.sample' },
      android: { package: 'com.example.sample' }, web: { bundler: 'metro' },
    },
  }));
  add('App.tsx', `import React from 'react';
import { StatusBar } from 'expo-status-bar';
import { NavigationContainer } from '@react-navigation/native';
import RootNavigator from './src/navigation/RootNavigator';
import { ThemeProvider } from './src/theme/ThemeProvider';

export default function App() {
  return (
    <ThemeProvider>
      <NavigationContainer>
        <RootNavigator />
        <StatusBar style="auto" />
      </NavigationContainer>
    </ThemeProvider>
  );
}
`);
  add('index.js', "import { registerRootComponent } from 'expo';\nimport App from './App';\n\nregisterRootComponent(App);\n");
  add('babel.config.js', "module.exports = function (api) {\n  api.cache(true);\n  return { presets: ['babel-preset-expo'] };\n};\n");
  add('metro.config.js', "const { getDefaultConfig } = require('expo/metro-config');\n\nmodule.exports = getDefaultConfig(__dirname);\n");
  add('tsconfig.json', json({ extends: 'expo/tsconfig.base', compilerOptions: { strict: true, baseUrl: '.', paths: { '@/*': ['src/*'] } } }));
  add('eas.json', json({ cli: { version: '>= 12.0.0' }, build: { development: { developmentClient: true, distribution: 'internal' }, production: {} } }));
  add('.gitignore', 'node_modules/\n.expo/\ndist/\nweb-build/\n*.log\n');
  add('.prettierrc', json({ singleQuote: true, trailingComma: 'all', printWidth: 100 }));
  add('README.md', '# Sample App\n\nAn Expo app used by the fs-sync demo and tests.\n\n```sh\nnpm install\nnpm start\n```\n');
  add('.env.example', 'EXPO_PUBLIC_API_URL=https://api.example.com\n');
  add('docs/architecture.md', '# Architecture\n\nScreens compose components; hooks hold state; utils are pure.\n');
  // Unicode names (NFC), as people do name files.
  add('docs/guía-de-estilo.md', '# Guía de estilo\n\nUsa nombres claros. Evita abreviaturas — «menos es más».\n');
  add('src/i18n/locales/日本語.json', json({ greeting: 'こんにちは', farewell: 'さようなら', cart: 'カート' }));
  for (const [lang, hello] of [['en', 'Hello'], ['fr', 'Bonjour'], ['de', 'Hallo'], ['es', 'Hola']]) {
    add(`src/i18n/locales/${lang}.json`, json({ greeting: hello, farewell: '…', cart: 'Cart' }));
  }
  add('src/i18n/index.ts', "import en from './locales/en.json';\n\nexport const strings = { en };\nexport type Strings = typeof en;\n");
  add('src/navigation/RootNavigator.tsx', `import React from 'react';
import { createNativeStackNavigator } from '@react-navigation/native-stack';
${SCREENS.map((s) => `import ${s}Screen from '../screens/${s}Screen';`).join('\n')}

const Stack = createNativeStackNavigator();

export default function RootNavigator() {
  return (
    <Stack.Navigator>
${SCREENS.map((s) => `      <Stack.Screen name="${s}" component={${s}Screen} />`).join('\n')}
    </Stack.Navigator>
  );
}
`);
  add('src/navigation/linking.ts', `export const linking = {\n  prefixes: ['sample://'],\n  config: { screens: { ${SCREENS.slice(0, 6).map((s) => `${s}: '${kebab(s)}'`).join(', ')} } },\n};\n`);
  add('src/theme/ThemeProvider.tsx', "import React, { createContext, PropsWithChildren } from 'react';\nimport { light } from './colors';\n\nexport const ThemeContext = createContext({ colors: light });\n\nexport function ThemeProvider({ children }: PropsWithChildren) {\n  return <ThemeContext.Provider value={{ colors: light }}>{children}</ThemeContext.Provider>;\n}\n");
  add('src/theme/colors.ts', "export const light = { surface: '#ffffff', text: '#111827', primary: '#6366f1' };\nexport const dark = { surface: '#111827', text: '#f9fafb', primary: '#818cf8' };\n");
  add('src/theme/spacing.ts', 'export const spacing = { xs: 4, sm: 8, md: 16, lg: 24, xl: 32 } as const;\n');
  add('src/theme/typography.ts', "export const typography = { body: 14, title: 20, display: 32, family: 'System' } as const;\n");
  add('src/store/cart.ts', "import { create } from 'zustand';\n\ntype Line = { id: string; qty: number };\n\nexport const useCartStore = create<{ lines: Line[]; add(id: string): void }>((set) => ({\n  lines: [],\n  add: (id) => set((s) => ({ lines: [...s.lines, { id, qty: 1 }] })),\n}));\n");
  add('src/store/session.ts', "import { create } from 'zustand';\n\nexport const useSession = create<{ userId: string | null }>(() => ({ userId: null }));\n");
  add('src/store/settings.ts', "import { create } from 'zustand';\n\nexport const useSettings = create<{ dark: boolean }>(() => ({ dark: false }));\n");
  add('src/api/client.ts', "const BASE = process.env.EXPO_PUBLIC_API_URL ?? '';\n\nexport async function get<T>(path: string): Promise<T> {\n  const r = await fetch(`${BASE}${path}`);\n  if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);\n  return r.json() as Promise<T>;\n}\n");
  for (const r of ['products', 'orders', 'users', 'reviews']) {
    add(`src/api/${r}.ts`, `import { get } from './client';\n\nexport const list${r[0].toUpperCase()}${r.slice(1)} = () => get<unknown[]>('/${r}');\n`);
  }
  add('src/constants/index.ts', "export const APP_NAME = 'Sample App';\nexport const PAGE_SIZE = 20;\n");
  add('src/types/index.ts', 'export type ID = string;\nexport interface Product { id: ID; title: string; price: number }\n');
  add('assets/README.md', 'Images and fonts. `icon.png` is generated by the fs-sync demo.\n');
  COMPONENTS.forEach((c, i) => add(`src/components/${c}.tsx`, component(c, i)));
  SCREENS.forEach((s, i) => add(`src/screens/${s}Screen.tsx`, screen(s, i)));
  HOOKS.forEach((h, i) => add(`src/hooks/${h}.ts`, hook(h, i)));
  UTILS.forEach((u, i) => add(`src/utils/${u}.ts`, util(u, i)));
  UTILS.forEach((u) => add(`__tests__/${u}.test.ts`, unitTest(u)));
  return files;
}

/**
 * The sample app with `count` files in all (the binary included; at least the base tree, 190
 * files + the icon). Extra files go into feature folders.
 */
export function sampleApp(count = 200) {
  const files = baseFiles();
  let i = 0;
  while (files.length + 1 < count) {
    const feature = FEATURES[i % FEATURES.length] + (i >= FEATURES.length * 50 ? `-${Math.floor(i / (FEATURES.length * 50))}` : '');
    const n = Math.floor(i / FEATURES.length);
    const kind = n % 3;
    const name = COMPONENTS[n % COMPONENTS.length] + (n >= COMPONENTS.length ? String(n) : '');
    if (kind === 0) files.push({ path: `src/features/${feature}/components/${name}.tsx`, content: component(name, n) });
    else if (kind === 1) files.push({ path: `src/features/${feature}/screens/${name}Screen.tsx`, content: screen(name, n) });
    else files.push({ path: `src/features/${feature}/hooks/use${name}.ts`, content: hook(`use${name}`, n) });
    i += 1;
  }
  return { files, binary: { path: 'assets/icon.png', bytes: iconPng(), contentType: 'image/png' } };
}

// --- a PNG, generated -------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A 96×96 RGBA app icon (a rounded gradient tile with a ring), as PNG bytes. Deterministic. */
export function iconPng(size = 96) {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    const row = y * (size * 4 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const o = row + 1 + x * 4;
      const dx = Math.max(0, Math.abs(x - c) - size * 0.3);
      const dy = Math.max(0, Math.abs(y - c) - size * 0.3);
      const inside = Math.hypot(dx, dy) <= size * 0.2;
      const r = Math.hypot(x - c, y - c);
      const ring = Math.abs(r - size * 0.25) < size * 0.04;
      raw[o] = ring ? 255 : Math.round(99 + (x / size) * 60);
      raw[o + 1] = ring ? 255 : Math.round(102 - (y / size) * 40);
      raw[o + 2] = ring ? 255 : 241;
      raw[o + 3] = inside ? 255 : 0;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
