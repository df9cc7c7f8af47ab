import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiRefusals } from '../common/openapi';
import { SessionDto } from './dto/token.dto';
import { CurrentPrincipal, RequireRole } from './access.decorators';
import type { Principal } from './principal';

/** Who the caller is: the dashboard asks once at sign-in to know which buttons to show. */
@ApiTags('tokens')
@ApiRefusals()
@Controller('api/v1/session')
export class SessionController {
  @Get()
  @RequireRole('viewer')
  @ApiOperation({ summary: "The caller's token: id, name and role" })
  @ApiOkResponse({ type: SessionDto })
  whoAmI(@CurrentPrincipal() caller: Principal): SessionDto {
    const user = caller as Extract<Principal, { kind: 'user' }>;
    return { tokenId: user.tokenId, name: user.name, role: user.role };
  }
}
