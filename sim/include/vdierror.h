/*
 * vdierror.h - the VD_E_* codes (SPEC §2.1), compatible with Microsoft's Linux vdierror.h.
 * On Linux every code is a negative int: VD_ERROR(c) = MAKE_HRESULT(1, 0x77, c) = 0x8077000c.
 */
#ifndef VDIERROR_H_
#define VDIERROR_H_

#ifndef MAKE_HRESULT
#define MAKE_HRESULT(sev, fac, code) \
    ((int) (((unsigned long)(sev) << 31) | ((unsigned long)(fac) << 16) | ((unsigned long)(code))) )
#endif

#define VD_ERROR(code) MAKE_HRESULT(1, 0x77, code)

#ifndef NOERROR
#define NOERROR 0
#endif

#define VD_E_NOTOPEN        VD_ERROR(2)  /* 0x80770002 the object was not open */
#define VD_E_TIMEOUT        VD_ERROR(3)  /* 0x80770003 the wait ran out; retrying is fine */
#define VD_E_ABORT          VD_ERROR(4)  /* 0x80770004 either side signalled abort */
#define VD_E_SECURITY       VD_ERROR(5)  /* 0x80770005 */
#define VD_E_INVALID        VD_ERROR(6)  /* 0x80770006 an invalid parameter */
#define VD_E_INSTANCE_NAME  VD_ERROR(7)  /* 0x80770007 */
#define VD_E_NOTSUPPORTED   VD_ERROR(9)  /* 0x80770009 the requested configuration is invalid */
#define VD_E_MEMORY         VD_ERROR(10) /* 0x8077000a */
#define VD_E_UNEXPECTED     VD_ERROR(11) /* 0x8077000b */
#define VD_E_PROTOCOL       VD_ERROR(12) /* 0x8077000c not allowed in this state */
#define VD_E_OPEN           VD_ERROR(13) /* 0x8077000d all devices are open / devices still open */
#define VD_E_CLOSE          VD_ERROR(14) /* 0x8077000e the server closed the device: normal end */
#define VD_E_BUSY           VD_ERROR(15) /* 0x8077000f */

/* Server-side codes in no public header; the values are vdisim's (SPEC §2.1 UNVERIFIED). */
#define VD_E_QUEUE_FULL     VD_ERROR(16) /* 0x80770010 */
#define VD_E_IO_ERROR       VD_ERROR(17) /* 0x80770011 */

#endif
