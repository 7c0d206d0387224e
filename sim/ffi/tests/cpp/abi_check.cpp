// abi_check.cpp - compiled by the cxx_header test against sim/include/vdi.h and linked to
// vdisim's libsqlvdi.so. Written only against the SPEC §4 declarations.
//
//   abi_check states <set>        the §1.5 state table cells a lone client can reach
//   abi_check timeouts <set>      GetConfiguration(1) timing, then GetCommand(1) timing on the
//                                 device the test's server opened, then GetCommand(-1) until
//                                 VD_E_CLOSE; prints "config_ms=N" and "command_ms=N"
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "vdi.h"
#include "vdierror.h"

static_assert(sizeof(ClientVirtualDeviceSet) == 8, "SPEC §4: the set object holds one pointer");
static_assert(sizeof(ClientVirtualDevice) == 8, "SPEC §4: the device object holds one pointer");
static_assert(sizeof(VDC_Command) == 24, "SPEC §2.4");
static_assert(sizeof(VDConfig) == 44, "SPEC §2.4");
static_assert(VD_E_PROTOCOL == (int)0x8077000c, "vdierror.h");
static_assert(VDF_LikeTape == 0x173, "SPEC §2.2");

static int failures = 0;

#define EXPECT(call, want)                                                                          \
    do                                                                                              \
    {                                                                                               \
        int got_ = (call);                                                                          \
        if (got_ != (want))                                                                         \
        {                                                                                           \
            fprintf(stderr, "line %d: %s = 0x%X, expected %s\n", __LINE__, #call, (unsigned)got_, #want); \
            failures++;                                                                             \
        }                                                                                           \
    } while (0)

static long long nowMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

static int states(char* name)
{
    ClientVirtualDeviceSet* vds = new ClientVirtualDeviceSet();
    VDConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    ClientVirtualDevice* vd = (ClientVirtualDevice*)0x1;
    uint8_t* p = nullptr;
    unsigned int h = 0;

    // DNE (§1.5): everything but Create is VD_E_PROTOCOL.
    EXPECT(vds->Close(), VD_E_PROTOCOL);
    EXPECT(vds->GetConfiguration(0, &cfg), VD_E_PROTOCOL);
    EXPECT(vds->OpenDevice(name, &vd), VD_E_PROTOCOL);
    if (vd != nullptr)
    {
        fprintf(stderr, "OpenDevice failure left a non-NULL device\n");
        failures++;
    }
    EXPECT(vds->SignalAbort(), VD_E_PROTOCOL);
    EXPECT(vds->GetBufferHandle(p, &h), VD_E_PROTOCOL);
    EXPECT(vds->MapBufferHandle(0, &p), VD_E_PROTOCOL);
    EXPECT(vds->OpenInSecondary(name), VD_E_PROTOCOL); // no such set
    vds->RegisterDeviceClosed();

    // Create validates the configuration (§1.2 VD_E_NOTSUPPORTED for a bad field).
    cfg.deviceCount = 0;
    EXPECT(vds->Create(name, &cfg), VD_E_NOTSUPPORTED);
    cfg.deviceCount = 1;
    EXPECT(vds->Create(name, &cfg), NOERROR);
    // Configurable: Create again is VD_E_PROTOCOL; GetConfiguration(0) polls.
    EXPECT(vds->Create(name, &cfg), VD_E_PROTOCOL);
    EXPECT(vds->GetConfiguration(0, &cfg), VD_E_TIMEOUT);
    EXPECT(vds->OpenDevice(name, &vd), VD_E_PROTOCOL);
    // A second object cannot create the same live set.
    ClientVirtualDeviceSet* other = new ClientVirtualDeviceSet();
    EXPECT(other->Create(name, &cfg), VD_E_PROTOCOL);
    delete other;
    // SignalAbort, then everything but Close says VD_E_ABORT (§3.6).
    EXPECT(vds->SignalAbort(), NOERROR);
    EXPECT(vds->GetConfiguration(0, &cfg), VD_E_ABORT);
    EXPECT(vds->OpenDevice(name, &vd), VD_E_ABORT);
    EXPECT(vds->Close(), NOERROR);
    // Reusable after Close (§1.2).
    EXPECT(vds->Create(name, &cfg), NOERROR);
    EXPECT(vds->Close(), NOERROR);
    EXPECT(vds->Close(), VD_E_PROTOCOL);

    // A device object not from OpenDevice.
    ClientVirtualDevice lone;
    VDC_Command* cmd = (VDC_Command*)0x1;
    EXPECT(lone.GetCommand(0, &cmd), VD_E_PROTOCOL);
    if (cmd != nullptr)
    {
        fprintf(stderr, "GetCommand failure left a non-NULL command\n");
        failures++;
    }
    EXPECT(lone.CompleteCommand(cmd, 0, 0, 0), VD_E_PROTOCOL);

    // Destroying a set that is still open closes it.
    EXPECT(vds->Create(name, &cfg), NOERROR);
    delete vds;
    ClientVirtualDeviceSet again;
    EXPECT(again.Create(name, &cfg), NOERROR);
    EXPECT(again.Close(), NOERROR);

    printf("states: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

static int timeouts(char* name)
{
    ClientVirtualDeviceSet vds;
    VDConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.deviceCount = 1;
    EXPECT(vds.Create(name, &cfg), NOERROR);
    // Before the test's server configures the set: a 1-unit wait times out.
    long long t0 = nowMs();
    EXPECT(vds.GetConfiguration(1, &cfg), VD_E_TIMEOUT);
    printf("config_ms=%lld\n", nowMs() - t0);
    fflush(stdout);
    int status;
    do
        status = vds.GetConfiguration(1000, &cfg);
    while (status == VD_E_TIMEOUT);
    EXPECT(status, NOERROR);
    ClientVirtualDevice* vd = nullptr;
    EXPECT(vds.OpenDevice(name, &vd), NOERROR);
    VDC_Command* cmd = nullptr;
    t0 = nowMs();
    EXPECT(vd->GetCommand(1, &cmd), VD_E_TIMEOUT);
    printf("command_ms=%lld\n", nowMs() - t0);
    fflush(stdout);
    // Negative waits for ever (SPEC §4): until the server closes the device.
    EXPECT(vd->GetCommand(-1, &cmd), VD_E_CLOSE);
    EXPECT(vds.Close(), NOERROR);
    // After Close the device object is invalid but safe to call and to delete.
    EXPECT(vd->GetCommand(0, &cmd), VD_E_PROTOCOL);
    delete vd;
    printf("timeouts: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

int main(int argc, char** argv)
{
    if (argc != 3)
        return 2;
    std::string mode = argv[1];
    if (mode == "states")
        return states(argv[2]);
    if (mode == "timeouts")
        return timeouts(argv[2]);
    return 2;
}
