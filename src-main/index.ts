/**
 * The Electron main process: a window, a menu, dialogs and IPC around the
 * electron-free DashboardService. Everything Electron-specific of the main
 * process is in this file; the rest (src-main/shell, services) runs under Node.
 */
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  net,
  protocol,
  safeStorage,
  session,
  type MenuItemConstructorOptions,
} from 'electron'
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ApiError, FileEvent, FileInfo, MenuCommand } from './api/contract.js'
import { toApiError } from './api/errors.js'
import { API_METHODS, SOURCES_METHODS } from './api/validate.js'
import { DashboardService } from './services/dashboard.js'
import { callApi } from './api/dispatch.js'
import { setNativeBinding } from './services/database.js'
import { createDemoDatabase } from './services/demo.js'
import { SourcesService } from './services/sources/service.js'
import {
  apiChannel,
  CHANNELS,
  createSourcesHandlers,
  desktopApi,
  respond,
  sourcesChannel,
} from './shell/handlers.js'
import { encryptedServerStore } from './shell/server-store.js'
import { RecentFiles } from './shell/recent.js'
import {
  APP_ORIGIN,
  APP_SCHEME,
  CONTENT_SECURITY_POLICY,
  isAppUrl,
  staticFile,
} from './shell/security.js'
import { electronNativeBinding, fileArgument, startupFile } from './shell/startup.js'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
const RENDERER_DIR = here('../renderer')
const PRELOAD = here('../preload/index.cjs')
const DEV_SERVER = process.env.ELECTRON_RENDERER_URL

app.setName('Routemeter')
// A profile of its own when asked (tests, several setups side by side).
const profile = process.argv.find((arg) => arg.startsWith('--user-data-dir='))
if (profile !== undefined) app.setPath('userData', profile.slice('--user-data-dir='.length))
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
])

// One app, several files over time: a second launch hands its file to the first.
const primary = app.requestSingleInstanceLock()
if (!primary) app.quit()

const service = new DashboardService()
let window: BrowserWindow | null = null
let recent: RecentFiles
let sources: SourcesService
let startupError: ApiError | null = null
/** the file on screen, for the window title */
let shown: FileInfo | null = null

function send(event: FileEvent): void {
  window?.webContents.send(CHANNELS.fileEvent, event)
}

function setTitle(info: FileInfo | null): void {
  shown = info
  window?.setTitle(info === null ? 'Routemeter' : `${basename(info.path)} — Routemeter`)
}

/** IPC only from the app's own page, not from anything it might have been navigated to. */
function fromApp(event: Electron.IpcMainInvokeEvent): boolean {
  return isAppUrl(event.senderFrame?.url ?? '', DEV_SERVER)
}

/** Opens a file for the UI: on success it becomes the last file; on failure the open one stays. */
async function openPath(path: string): Promise<FileInfo> {
  const info = await service.openFile({ path })
  startupError = null
  recent.add(info.path)
  app.addRecentDocument(info.path)
  setTitle(info)
  buildMenu()
  return info
}

/** The native open dialog for metrics files, attached to the window when there is one. */
async function showMetricsDialog(
  title: string,
  properties: Electron.OpenDialogOptions['properties'],
): Promise<string[]> {
  const options: Electron.OpenDialogOptions = {
    title,
    properties,
    filters: [
      { name: 'Routemeter metrics', extensions: ['db', 'sqlite', 'sqlite3'] },
      { name: 'All files', extensions: ['*'] },
    ],
  }
  const result =
    window === null
      ? await dialog.showOpenDialog(options)
      : await dialog.showOpenDialog(window, options)
  return result.canceled ? [] : result.filePaths
}

async function chooseFile(): Promise<FileInfo | null> {
  const [path] = await showMetricsDialog('Open a Routemeter metrics file', ['openFile'])
  return path === undefined ? null : openPath(path)
}

/** Several files to open as one dataset (the sources dialog adds them to its list). */
function chooseFiles(): Promise<string[]> {
  return showMetricsDialog('Metrics files of several nodes', ['openFile', 'multiSelections'])
}

/** From the menu: a failure is shown in the window rather than thrown into the void. */
function openFromMenu(open: () => Promise<FileInfo | null>): void {
  open().catch((error: unknown) => send({ kind: 'error', error: toApiError(error) }))
}

async function openDemo(): Promise<FileInfo> {
  const path = join(app.getPath('userData'), 'demo.db')
  if (!existsSync(path)) createDemoDatabase(path, { nativeBinding: nativeBindingPath() })
  return openPath(path)
}

function nativeBindingPath(): string {
  return electronNativeBinding(app.getAppPath(), process.versions.electron)
}

/** Menu items that need the UI's dialogs: the window is asked to show them. */
function menuCommand(command: MenuCommand): void {
  window?.webContents.send(CHANNELS.menuCommand, command)
}

function buildMenu(): void {
  const recentItems: MenuItemConstructorOptions[] = recent.list().map((path) => ({
    label: path,
    click: () => openFromMenu(() => openPath(path)),
  }))
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' } as MenuItemConstructorOptions] : []),
    {
      label: 'File',
      submenu: [
        { label: 'Open…', accelerator: 'CmdOrCtrl+O', click: () => openFromMenu(chooseFile) },
        {
          label: 'Open Recent',
          submenu: [
            ...(recentItems.length > 0
              ? recentItems
              : [{ label: 'No recent files', enabled: false }]),
            { type: 'separator' },
            {
              label: 'Clear Recent',
              enabled: recentItems.length > 0,
              click: () => {
                recent.clear()
                app.clearRecentDocuments()
                buildMenu()
              },
            },
          ],
        },
        { label: 'Open Demo Database', click: () => openFromMenu(openDemo) },
        { type: 'separator' },
        { label: 'Open from Server…', click: () => menuCommand('open-server') },
        { label: 'Open Several as One…', click: () => menuCommand('open-several') },
        { label: 'Refresh from Server', click: () => menuCommand('refresh') },
        { type: 'separator' },
        process.platform === 'darwin' ? { role: 'close' } : { role: 'quit' },
      ],
    },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' } as MenuItemConstructorOptions]),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
  ]
  Menu.setApplicationMenu(Menu.buildFromTemplate(template))
}

function registerIpc(): void {
  const api = desktopApi(service, {
    openFile: openPath,
    startupError: () => startupError,
  })
  for (const method of API_METHODS) {
    ipcMain.handle(apiChannel(method), (event, args: unknown) => {
      if (!fromApp(event)) {
        return { ok: false, error: { code: 'BAD_ARGUMENT', message: 'unknown sender' } }
      }
      // Where IPC enters: the argument is validated here, once.
      return callApi(api, method, args)
    })
  }
  const sourcesHandlers = createSourcesHandlers(sources)
  for (const method of SOURCES_METHODS) {
    const handler: (args: unknown) => Promise<unknown> = sourcesHandlers[method]
    ipcMain.handle(sourcesChannel(method), (event, args: unknown) => {
      if (!fromApp(event)) {
        return { ok: false, error: { code: 'BAD_ARGUMENT', message: 'unknown sender' } }
      }
      return respond(() => handler(args))
    })
  }
  ipcMain.handle(CHANNELS.chooseFiles, (event) =>
    fromApp(event)
      ? respond(chooseFiles)
      : { ok: false, error: { code: 'BAD_ARGUMENT', message: 'unknown sender' } },
  )
  ipcMain.handle(CHANNELS.chooseFile, (event) =>
    fromApp(event)
      ? respond(chooseFile)
      : { ok: false, error: { code: 'BAD_ARGUMENT', message: 'unknown sender' } },
  )
  ipcMain.handle(CHANNELS.openDropped, async (event, path: unknown) => {
    if (!fromApp(event) || typeof path !== 'string' || path === '') return
    try {
      await openPath(path)
    } catch (error) {
      send({ kind: 'error', error: toApiError(error) })
    }
  })
}

function serveRenderer(): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const file = staticFile(RENDERER_DIR, new URL(request.url).pathname)
    if (file === null || !existsSync(file)) return new Response('Not found', { status: 404 })
    const response = await net.fetch(pathToFileURL(file).toString())
    const headers = new Headers(response.headers)
    headers.set('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    headers.set('X-Content-Type-Options', 'nosniff')
    return new Response(response.body, { status: response.status, headers })
  })
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1440,
    height: 920,
    minWidth: 900,
    minHeight: 600,
    show: false,
    title: 'Routemeter',
    backgroundColor: '#f5f6f8',
    webPreferences: {
      preload: PRELOAD,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
      devTools: !app.isPackaged,
    },
  })
  win.once('ready-to-show', () => win.show())
  // The title names the open file, not the page's <title>.
  win.on('page-title-updated', (event) => event.preventDefault())
  // Nothing but the app in this window: links and drops do not navigate it away.
  win.webContents.on('will-navigate', (event, url) => {
    if (!isAppUrl(url, DEV_SERVER)) event.preventDefault()
  })
  win.webContents.on('will-redirect', (event, url) => {
    if (!isAppUrl(url, DEV_SERVER)) event.preventDefault()
  })
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }))
  win.webContents.on('will-attach-webview', (event) => event.preventDefault())
  win.on('closed', () => {
    if (window === win) window = null
  })
  void win.loadURL(DEV_SERVER ?? `${APP_ORIGIN}/index.html`)
  win.setTitle(shown === null ? 'Routemeter' : `${basename(shown.path)} — Routemeter`)
  return win
}

/** The file to show first: the argument, else the last file, else the demo database. */
async function openStartupFile(): Promise<void> {
  const choice = startupFile(
    fileArgument(process.argv, app.isPackaged, process.cwd()),
    recent.last(),
    app.getPath('userData'),
  )
  try {
    const info = choice.kind === 'demo' ? await openDemo() : await openPath(choice.path)
    setTitle(info)
  } catch (error) {
    startupError = toApiError(error)
  }
}

app.on('second-instance', (_event, argv, cwd) => {
  const path = fileArgument(argv, app.isPackaged, cwd)
  if (path !== null) openFromMenu(() => openPath(path))
  if (window !== null) {
    if (window.isMinimized()) window.restore()
    window.focus()
  }
})

app.on('open-file', (event, path) => {
  // macOS: a file dropped on the dock icon or opened from Finder.
  event.preventDefault()
  if (app.isReady()) openFromMenu(() => openPath(path))
  else process.argv.push(path)
})

app.on('web-contents-created', (_event, contents) => {
  contents.setWindowOpenHandler(() => ({ action: 'deny' }))
})

app.on('window-all-closed', () => app.quit())

app.on('will-quit', () => {
  void sources?.close()
  void service.close()
})

void app.whenReady().then(async () => {
  if (!primary) return
  const binding = nativeBindingPath()
  if (!existsSync(binding)) {
    dialog.showErrorBox(
      'Routemeter cannot read SQLite files',
      `better-sqlite3 built for Electron ${process.versions.electron} is missing:\n${binding}\n\n` +
        'Run "npm run build:native" (it needs to download Electron\'s headers), or "npm start", which does it.',
    )
    app.exit(1)
    return
  }
  setNativeBinding(binding)
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) =>
    callback(false),
  )
  recent = new RecentFiles(join(app.getPath('userData'), 'recent.json'))
  // Pulled copies and merged datasets in the profile; tokens encrypted with the OS keychain's key.
  sources = new SourcesService({
    files: service,
    dataDir: join(app.getPath('userData'), 'servers'),
    store: encryptedServerStore(join(app.getPath('userData'), 'servers.json'), safeStorage),
  })
  serveRenderer()
  registerIpc()
  await openStartupFile()
  buildMenu()
  service.onFileEvent(send)
  // A copy pulled from a server or a merged dataset opens through the sources, not openPath.
  service.onFileEvent((event) => {
    if (event.kind === 'opened' && event.info.path !== shown?.path) setTitle(event.info)
  })
  window = createWindow()
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) window = createWindow()
  })
})
