/*
 * vdi.h - vdisim's drop-in for the Linux SQL Server VDI client header (SPEC §4).
 *
 * Declares the same structures, enums and C++ classes as Microsoft's Linux vdi.h
 * (samples/features/sqlvdi-linux/vdi.h), so a client compiled against either links
 * against libsqlvdi.so from vdisim with the same Itanium-mangled names:
 *
 *   g++ -std=c++11 client.cpp -I<vdisim>/sim/include -L<target>/debug -lsqlvdi -pthread
 *   LD_LIBRARY_PATH=<target>/debug ./a.out
 *
 * Differences from Windows (SPEC §4): int returns (VD_E_* are negative ints, NOERROR 0),
 * char* names, time_t timeouts where "INFINITE or any negative value" waits for ever.
 * Timeout units: GetConfiguration takes milliseconds; GetCommand takes milliseconds too
 * (Microsoft's Linux specification) unless VDISIM_TIMEOUT_UNIT=s is set in the environment
 * (Microsoft's sample comments its GetCommand(90) as "Timeout in seconds"). See README-ffi.
 *
 * In C (no __cplusplus) this header only declares the structures and enums; C code uses
 * vdisim.h (plain C API) or vdi_com.h (the Windows COM-style C interface).
 */
#ifndef __vdi_h__
#define __vdi_h__

#include <time.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma pack(push, _vdi_h_)

/* Win32 completion codes the Linux header defines (SPEC §2.5). */
#ifndef ERROR_SUCCESS
#define ERROR_SUCCESS           0L
#endif
#ifndef ERROR_ARENA_TRASHED
#define ERROR_ARENA_TRASHED     7L
#endif
#ifndef ERROR_HANDLE_EOF
#define ERROR_HANDLE_EOF        38L
#endif
#ifndef ERROR_HANDLE_DISK_FULL
#define ERROR_HANDLE_DISK_FULL  39L
#endif
#ifndef ERROR_NOT_SUPPORTED
#define ERROR_NOT_SUPPORTED     50L
#endif
#ifndef ERROR_DISK_FULL
#define ERROR_DISK_FULL         112L
#endif
#ifndef ERROR_OPERATION_ABORTED
#define ERROR_OPERATION_ABORTED 995L
#endif

#pragma pack(8)
/* SPEC §2.4: eleven 32-bit fields, 44 bytes. */
struct VDConfig
{
    uint32_t deviceCount;
    uint32_t features;
    uint32_t prefixZoneSize;
    uint32_t alignment;
    uint32_t softFileMarkBlockSize;
    uint32_t EOMWarningSize;
    uint32_t serverTimeOut;
    uint32_t blockSize;
    uint32_t maxIODepth;
    uint32_t maxTransferSize;
    uint32_t bufferAreaSize;
};

/* SPEC §2.2 */
enum VDFeatures
{
    VDF_Removable       = 0x1,
    VDF_Rewind          = 0x2,
    VDF_Position        = 0x10,
    VDF_SkipBlocks      = 0x20,
    VDF_ReversePosition = 0x40,
    VDF_Discard         = 0x80,
    VDF_FileMarks       = 0x100,
    VDF_RandomAccess    = 0x200,
    VDF_SnapshotPrepare = 0x400,
    VDF_EnumFrozenFiles = 0x800,
    VDF_VSSWriter       = 0x1000,
    VDF_RequestComplete = 0x2000,
    VDF_WriteMedia      = 0x10000,
    VDF_ReadMedia       = 0x20000,
    VDF_CompleteEnabled = 0x40000,
#ifdef __cplusplus
    VDF_LatchStats      = 0x80000000,
#else
    VDF_LatchStats      = (int)0x80000000, /* ISO C enumerators are ints; same bits */
#endif
    VDF_LikePipe        = 0,
    VDF_LikeTape        = VDF_FileMarks | VDF_Removable | VDF_Rewind | VDF_Position | VDF_SkipBlocks
                          | VDF_ReversePosition,
    VDF_LikeDisk        = VDF_RandomAccess
};

/* SPEC §2.3 */
enum VDCommands
{
    VDC_Read            = 1,
    VDC_Write           = 2,
    VDC_ClearError      = 3,
    VDC_Rewind          = 4,
    VDC_WriteMark       = 5,
    VDC_SkipMarks       = 6,
    VDC_SkipBlocks      = 7,
    VDC_Load            = 8,
    VDC_GetPosition     = 9,
    VDC_SetPosition     = 10,
    VDC_Discard         = 11,
    VDC_Flush           = 12,
    VDC_Snapshot        = 13,
    VDC_MountSnapshot   = 14,
    VDC_PrepareToFreeze = 15,
    VDC_FileInfoBegin   = 16,
    VDC_FileInfoEnd     = 17,
    VDC_GetError        = 18,
    VDC_Complete        = 19
};

enum VDWhence
{
    VDC_Beginning = 0,
    VDC_Current   = 1,
    VDC_End       = 2
};

/* SPEC §2.4: 24 bytes on x86-64. Read-only for the client; valid until CompleteCommand. */
struct VDC_Command
{
    int32_t  commandCode;
    int32_t  size;
    int64_t  position;
    uint8_t* buffer;
};

struct VDS_Command
{
    int32_t  commandCode;
    int32_t  size;
    int64_t  inPosition;
    int64_t  outPosition;
    uint8_t* buffer;
    uint8_t* completionRoutine;
    uint8_t* completionContext;
    int32_t  completionCode;
    int32_t  bytesTransferred;
};

#ifndef __cplusplus
typedef struct VDConfig VDConfig;
typedef struct VDC_Command VDC_Command;
typedef struct VDS_Command VDS_Command;
#endif

#ifdef __cplusplus

class CVDS;
class CVD;
class ClientVirtualDeviceSet;

/* One virtual device (SPEC §1.3, §4). Obtained from ClientVirtualDeviceSet::OpenDevice;
 * invalidated by ClientVirtualDeviceSet::Close. */
class ClientVirtualDevice
{
public:
    ClientVirtualDevice();

    ~ClientVirtualDevice();

    int
    GetCommand(
        time_t        timeOut,
        VDC_Command** ppCmd);

    int
    CompleteCommand(
        VDC_Command*  pCmd,
        int           completionCode,
        unsigned long bytesTransferred,
        int64_t       position);

private:
    CVD* cvd;
    friend class ClientVirtualDeviceSet;
};

/* A virtual device set, client side (SPEC §1.2, §4). The caller allocates it
 * (new ClientVirtualDeviceSet()); it holds one pointer, all state lives behind it. */
class ClientVirtualDeviceSet
{
public:
    int
    Create(
        char*     name,
        VDConfig* cfg);

    int
    GetConfiguration(
        time_t    timeout,
        VDConfig* cfg);

    int
    OpenDevice(
        char*                 name,
        ClientVirtualDevice** ppVirtualDevice);

    int
    Close();

    int
    SignalAbort();

    int
    OpenInSecondary(
        char* setName);

    int
    GetBufferHandle(
        uint8_t*      pBuffer,
        unsigned int* pBufferHandle);

    int
    MapBufferHandle(
        int       dwBuffer,
        uint8_t** ppBuffer);

    void
    RegisterDeviceClosed();

    ClientVirtualDeviceSet ();
    ~ClientVirtualDeviceSet ();

private:
    CVDS* cvds;
};

#endif /* __cplusplus */

#pragma pack(pop, _vdi_h_)

#ifdef __cplusplus
}
#endif

#endif /* __vdi_h__ */
