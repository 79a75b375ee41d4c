<#
.SYNOPSIS
    Installs the wskclient driver package, checks the service, runs `wskctl demo` against
    local peers, collects the driver's DbgPrint output and uninstalls.

.DESCRIPTION
    Steps 5 to 9 of docs/install.md in one run, on a test-signed VM whose certificate store
    already trusts WDRLocalTestCert.cer (step 4). Run it from an elevated PowerShell
    (Windows PowerShell 5.1 or PowerShell 7).

    Status: [paper]. Written from Microsoft's documentation (pnputil, sc.exe,
    Win32_SystemDriver, Get-WindowsDriver, DebugView); never run by the project. Its syntax is
    checked on Linux by tests/powershell.rs. Exit code 0 means every step passed.

.PARAMETER PackageDir
    The folder with wskclient.inf, wskclient.sys and wskclient.cat (cargo make's
    target\<profile>\wskclient_package, copied to the VM).

.PARAMETER WskCtl
    Path of wskctl.exe (cargo build -p wskctl --release).

.PARAMETER DbgView
    Optional path of Sysinternals Dbgview.exe. When given, it captures kernel output (verbose,
    so DbgPrint's INFO level shows) into a log in LogDir, and the log must show DriverEntry
    returning STATUS_SUCCESS.

.PARAMETER LogDir
    Where the logs go (DebugView's log, wskctl's output).

.PARAMETER KeepInstalled
    Leave the driver package installed and the service stopped.

.EXAMPLE
    .\wskclient-test.ps1 -PackageDir . -WskCtl .\wskctl.exe -DbgView C:\tools\Dbgview.exe
#>
[CmdletBinding()]
param(
    [string] $PackageDir = $PSScriptRoot,
    [string] $WskCtl = (Join-Path $PSScriptRoot 'wskctl.exe'),
    [string] $DbgView = '',
    [string] $LogDir = (Join-Path $env:TEMP 'wskclient-test'),
    [switch] $KeepInstalled
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

$ServiceName = 'wskclient'
$InfName = 'wskclient.inf'
# The driver's own prints (src/kmdf.rs), through wdk::println! (DbgPrint).
$EntryLine = 'wskclient: KMDF DriverEntry -> 0x00000000'
$UnloadLine = 'wskclient: KMDF unloaded'

function Write-Step {
    param([string] $Text)
    Write-Host ''
    Write-Host "== $Text"
}

function Assert-Elevated {
    $identity = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identity)
    $admin = [Security.Principal.WindowsBuiltInRole]::Administrator
    if (-not $principal.IsInRole($admin)) {
        throw ('Run from an elevated PowerShell: installing needs it, and \\.\WskClient opens for ' +
            'SYSTEM and Administrators only.')
    }
}

# Runs a console program, echoes its output, and throws unless its exit code is allowed.
function Invoke-Native {
    param(
        [string] $File,
        [string[]] $Arguments,
        [int[]] $AllowedExitCodes = @(0)
    )
    Write-Host "> $File $($Arguments -join ' ')"
    # Windows PowerShell 5.1 turns a native program's stderr lines into error records, which
    # 'Stop' would throw on: the exit code decides here.
    $ErrorActionPreference = 'Continue'
    $output = & $File @Arguments 2>&1 | Out-String
    $code = $LASTEXITCODE
    Write-Host $output.TrimEnd()
    if ($AllowedExitCodes -notcontains $code) {
        throw "$File exited with $code"
    }
    return $output
}

# The service as the service control manager sees it (locale-independent, unlike sc.exe's
# labels); $null when it does not exist.
function Get-DriverService {
    return Get-CimInstance -ClassName Win32_SystemDriver -Filter "Name='$ServiceName'"
}

# Waits, bounded, until the service reaches $State.
function Wait-ServiceState {
    param(
        [string] $State,
        [int] $TimeoutSeconds = 30
    )
    $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
    while ((Get-Date) -lt $deadline) {
        $service = Get-DriverService
        if ($null -ne $service -and $service.State -eq $State) {
            return $service
        }
        Start-Sleep -Milliseconds 250
    }
    throw "service $ServiceName did not reach state $State within $TimeoutSeconds s"
}

# The published name (oemNN.inf) that the driver store gave our package.
function Get-PublishedName {
    $packages = @(Get-WindowsDriver -Online | Where-Object {
            (Split-Path -Leaf $_.OriginalFileName) -eq $InfName
        })
    if ($packages.Count -ne 1) {
        throw "expected one driver package with original name $InfName, found $($packages.Count)"
    }
    return $packages[0].Driver
}

# Waits, bounded, until the DebugView log holds $Line.
function Wait-LogLine {
    param(
        [string] $Path,
        [string] $Line,
        [int] $TimeoutSeconds = 10
    )
    $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
    while ((Get-Date) -lt $deadline) {
        if ((Test-Path -LiteralPath $Path) -and
            (Select-String -LiteralPath $Path -SimpleMatch -Pattern $Line -Quiet)) {
            return $true
        }
        Start-Sleep -Milliseconds 250
    }
    return $false
}

Assert-Elevated
New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
$inf = Join-Path $PackageDir $InfName
foreach ($file in @($inf, (Join-Path $PackageDir 'wskclient.sys'),
        (Join-Path $PackageDir 'wskclient.cat'), $WskCtl)) {
    if (-not (Test-Path -LiteralPath $file)) {
        throw "missing $file (see docs/install.md, step 3)"
    }
}
if ($null -ne (Get-DriverService)) {
    throw "service $ServiceName already exists: uninstall it first (docs/install.md, step 9)"
}

$dbgLog = Join-Path $LogDir 'dbgview.log'
$dbgProcess = $null
$published = $null
$failures = New-Object System.Collections.Generic.List[string]

try {
    if ($DbgView -ne '') {
        Write-Step 'DebugView: capture kernel output (verbose) to a log'
        Remove-Item -LiteralPath $dbgLog -ErrorAction SilentlyContinue
        $dbgArgs = @('/accepteula', '/t', '/k', '/v', '/l', $dbgLog)
        $dbgProcess = Start-Process -FilePath $DbgView -ArgumentList $dbgArgs -PassThru
    }

    Write-Step 'Install the driver package (pnputil /add-driver /install)'
    # 3010: ERROR_SUCCESS_REBOOT_REQUIRED.
    Invoke-Native -File 'pnputil.exe' -Arguments @('/add-driver', $inf, '/install') -AllowedExitCodes @(0, 3010) |
        Out-Null
    $published = Get-PublishedName
    Write-Host "published name: $published"

    Write-Step 'Start the service and check it runs (sc start, sc query)'
    Invoke-Native -File 'sc.exe' -Arguments @('start', $ServiceName) | Out-Null
    $service = Wait-ServiceState -State 'Running'
    Invoke-Native -File 'sc.exe' -Arguments @('query', $ServiceName) | Out-Null
    Write-Host "Win32_SystemDriver: State=$($service.State) PathName=$($service.PathName)"

    Write-Step 'Run the demo against local peers (wskctl --device windows demo)'
    $demo = Invoke-Native -File $WskCtl -Arguments @('--device', 'windows', 'demo')
    Set-Content -LiteralPath (Join-Path $LogDir 'demo.txt') -Value $demo
    Invoke-Native -File $WskCtl -Arguments @('--device', 'windows', 'stats') | Out-Null
}
catch {
    $failures.Add("$($_.Exception.Message)")
    Write-Host "FAILED: $($_.Exception.Message)"
}
finally {
    Write-Step 'Stop the service'
    if ($null -ne (Get-DriverService)) {
        try {
            # 1062: the service was not started (a failed start above).
            Invoke-Native -File 'sc.exe' -Arguments @('stop', $ServiceName) -AllowedExitCodes @(0, 1062) |
                Out-Null
            Wait-ServiceState -State 'Stopped' | Out-Null
        }
        catch {
            $failures.Add("$($_.Exception.Message)")
        }
    }

    if ($null -ne $dbgProcess) {
        Write-Step "Driver's DbgPrint output ($dbgLog)"
        if (-not (Wait-LogLine -Path $dbgLog -Line $EntryLine)) {
            $failures.Add("DebugView log lacks '$EntryLine'")
        }
        if (-not (Wait-LogLine -Path $dbgLog -Line $UnloadLine)) {
            $failures.Add("DebugView log lacks '$UnloadLine'")
        }
        Stop-Process -Id $dbgProcess.Id -ErrorAction SilentlyContinue
        if (Test-Path -LiteralPath $dbgLog) {
            Select-String -LiteralPath $dbgLog -SimpleMatch -Pattern 'wskclient:' |
                ForEach-Object { Write-Host $_.Line }
        }
    }

    if ($null -ne $published -and -not $KeepInstalled) {
        Write-Step "Uninstall (pnputil /delete-driver $published /uninstall)"
        try {
            Invoke-Native -File 'pnputil.exe' -Arguments @('/delete-driver', $published, '/uninstall') |
                Out-Null
            if ($null -ne (Get-DriverService)) {
                $failures.Add("service $ServiceName still exists after the uninstall")
            }
        }
        catch {
            $failures.Add("$($_.Exception.Message)")
        }
    }
}

Write-Step 'Result'
if ($failures.Count -gt 0) {
    foreach ($failure in $failures) {
        Write-Host "FAILED: $failure"
    }
    Write-Host "Logs: $LogDir; install log: $env:windir\INF\setupapi.dev.log; System event log ids 7000/7026."
    exit 1
}
Write-Host "PASSED: install, sc query RUNNING, wskctl demo, DbgPrint, uninstall. Logs: $LogDir"
exit 0
